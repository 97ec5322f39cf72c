/** The Server-Sent Events reader on streams cut into chunks at awkward places. */
import { describe, expect, it } from 'vitest';
import { readSseFrames, type SseFrame } from '../../src/client/sse.js';

const encoder = new TextEncoder();

/** A body that delivers `chunks` one read at a time; `cancelled` tells whether it was cancelled. */
function body(chunks: Array<string | Uint8Array>, error?: Error) {
  const state = { cancelled: false };
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[i++];
      if (chunk === undefined) {
        if (error) controller.error(error);
        else controller.close();
        return;
      }
      controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

async function frames(chunks: Array<string | Uint8Array>): Promise<SseFrame[]> {
  const all: SseFrame[] = [];
  for await (const frame of readSseFrames(body(chunks).stream)) all.push(frame);
  return all;
}

/** What the API sends: a status, a comment, a progress event, non-ASCII data. */
const STREAM =
  'event: status\ndata: {"type":"status","status":"running"}\n\n' +
  ': keepalive\n\n' +
  'event: progress\ndata: {"step":3}\n\n' +
  'event: metrics\ndata: {"name":"λ→µ"}\n\n';
const EXPECTED: SseFrame[] = [
  { event: 'status', data: '{"type":"status","status":"running"}' },
  { event: 'progress', data: '{"step":3}' },
  { event: 'metrics', data: '{"name":"λ→µ"}' },
];

describe('readSseFrames', () => {
  it('reads the same frames wherever a stream is cut in two, in LF and CRLF', async () => {
    for (const text of [STREAM, STREAM.replaceAll('\n', '\r\n')]) {
      const bytes = encoder.encode(text);
      for (let cut = 0; cut <= bytes.length; cut++)
        expect(await frames([bytes.slice(0, cut), bytes.slice(cut)]), `cut at ${cut}`).toEqual(
          EXPECTED,
        );
    }
  });

  it('reads a stream that arrives one byte at a time (inside multi-byte characters too)', async () => {
    const bytes = encoder.encode(STREAM.replaceAll('\n', '\r\n'));
    expect(await frames([...bytes].map((b) => Uint8Array.of(b)))).toEqual(EXPECTED);
  });

  it('takes a CR at the end of a chunk and the LF that starts the next as one line end', async () => {
    // Read as two line ends, "data: a\r" + "\n" would be an empty line: a frame "a" too early.
    expect(await frames(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual([
      { event: 'message', data: 'a\nb' },
    ]);
  });

  it('ends lines at a lone CR as well', async () => {
    expect(await frames(['event: x\rdata: 1\r', '\revent: y\rdata: 2\r\r'])).toEqual([
      { event: 'x', data: '1' },
      { event: 'y', data: '2' },
    ]);
  });

  it('joins data lines with LF, keeps spaces after the first, and skips comments inside a frame', async () => {
    expect(
      await frames([
        'event: metrics\ndata: first\n: a comment in the middle\ndata:second\ndata\ndata:  two spaces\n\n',
      ]),
    ).toEqual([{ event: 'metrics', data: 'first\nsecond\n\n two spaces' }]);
  });

  it('dispatches nothing for comments alone, a frame without data, or a frame the stream cuts off', async () => {
    expect(
      await frames([': keepalive\n\n', 'event: status\n\n', 'id: 7\nretry: 10\n\n', 'data: cut']),
    ).toEqual([]);
    expect(await frames(['data: last\n\n', 'event: status\ndata: {"never":"ended"}\n'])).toEqual([
      { event: 'message', data: 'last' },
    ]);
  });

  it('cancels the body when the reader stops early, so the connection closes', async () => {
    const { stream, state } = body(['data: 1\n\n', 'data: 2\n\n', 'data: 3\n\n']);
    const seen: string[] = [];
    for await (const frame of readSseFrames(stream)) {
      seen.push(frame.data);
      break;
    }
    expect(seen).toEqual(['1']);
    expect(state.cancelled).toBe(true);
  });

  it('passes on an error of the body after the frames before it', async () => {
    const seen: string[] = [];
    const reading = (async () => {
      for await (const frame of readSseFrames(
        body(['data: 1\n\n', 'data: 2'], new Error('connection reset')).stream,
      ))
        seen.push(frame.data);
    })();
    await expect(reading).rejects.toThrow('connection reset');
    expect(seen).toEqual(['1']);
  });
});
