/**
 * Reads a Server-Sent Events stream (the body of a `text/event-stream` response) into frames,
 * following the WHATWG "event stream interpretation" rules the API's streams need:
 *
 *   event: status            <- the frame's type (`message` when a frame names none)
 *   data: {"type":"status"}  <- data lines; several in one frame are joined with "\n"
 *   : keepalive              <- a comment: ignored
 *                            <- an empty line ends (dispatches) the frame
 *
 * Lines end with CRLF, LF or a lone CR. Network chunks fall anywhere: in the middle of a line, of
 * a UTF-8 character, or between the CR and LF of one line ending, so text is decoded in stream
 * mode and only complete lines are interpreted. `id:` and `retry:` are read past: the API sends
 * neither, and reconnecting is the caller's business. A frame the stream ends in the middle of is
 * dropped, as a browser drops it.
 */

/** One dispatched event: its type and its data (the data lines, joined with "\n"). */
export interface SseFrame {
  event: string;
  data: string;
}

/**
 * The frames of `body`, in order, as they arrive. Stopping the iteration early (`break`, `return`)
 * cancels the body, which closes the connection; an error reading the body (an abort, a dropped
 * connection) propagates to the caller.
 */
export async function* readSseFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<SseFrame> {
  const reader = body.getReader();
  // TextDecoder also drops a leading byte-order mark, as the standard asks.
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  let event = '';
  let data: string[] = [];
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      pending += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const cr = pending.indexOf('\r', start);
        const lf = pending.indexOf('\n', start);
        const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
        if (end < 0) break;
        // A CR at the very end of what has arrived may be the first half of a CRLF: wait for the
        // next chunk to tell, unless there is none.
        if (end === cr && end === pending.length - 1 && !done) break;
        const line = pending.slice(start, end);
        start = end + (end === cr && pending[end + 1] === '\n' ? 2 : 1);

        if (line === '') {
          // Dispatch. A frame without data lines (only `event:`, say) dispatches nothing.
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue; // comment (the server's keepalive)
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let fieldValue = colon < 0 ? '' : line.slice(colon + 1);
        if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1);
        if (field === 'event') event = fieldValue;
        else if (field === 'data') data.push(fieldValue);
        // Other fields (id, retry, unknown ones) are ignored.
      }
      pending = pending.slice(start);
      if (done) {
        finished = true;
        return;
      }
    }
  } finally {
    // Early exit by the consumer: cancel the body so the connection closes. Cancelling rejects
    // only if the stream already failed, which the consumer no longer cares about.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
