/**
 * HTTP below fetch, for what fetch will not send or cannot observe: a Content-Length that lies,
 * a request whose body is never finished, a stream that is opened and never read.
 */
import net from 'node:net';

export interface RawAnswer {
  /** Status of the response's first line; 0 when none came before the timeout or close. */
  status: number;
  /** Head and as much of the body as arrived. */
  text: string;
  /** Milliseconds from the request's first byte to the first byte of the answer. */
  ms: number;
}

/**
 * Sends `head` (request line and headers, without the blank line) and then `body`, and waits up
 * to `timeoutMs` for an answer. The body is not required to match any Content-Length sent.
 */
export function rawRequest(
  base: string,
  head: string,
  body: Buffer | string = '',
  timeoutMs = 5000,
): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const started = performance.now();
    let firstByte = 0;
    let text = '';
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`${head}\r\n\r\n`);
      if (body.length > 0) socket.write(body);
    });
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, text, ms: firstByte ? firstByte - started : performance.now() - started });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      if (!firstByte) firstByte = performance.now();
      text += chunk.toString('latin1');
      // One answer is enough: stop once its head (and a short body) is in.
      if (text.includes('\r\n\r\n') && text.length > 200) finish();
    });
    socket.on('end', finish);
    socket.on('error', finish);
  });
}

/**
 * Opens an event stream and never reads past its head: the socket is paused, so the kernel's
 * buffers fill and the server's writes start to queue. Resolves with the status once the head
 * is in; `close()` ends it.
 */
export interface StalledStream {
  status: number;
  /**
   * Starts reading again and resolves whether the server had ended the stream: a stream it
   * dropped ends once what the kernel held is read; one it kept goes on (keepalives).
   */
  endedByServer(waitMs?: number): Promise<boolean>;
  close(): void;
}

export function stalledStream(base: string, path: string, apiKey: string): Promise<StalledStream> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    let ended = false;
    let head = '';
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${apiKey}\r\n` +
          'Accept: text/event-stream\r\n\r\n',
      );
    });
    socket.on('end', () => (ended = true));
    socket.on('close', () => (ended = true));
    socket.on('error', () => (ended = true));
    const endedByServer = async (waitMs = 3000): Promise<boolean> => {
      socket.on('data', () => undefined);
      socket.resume();
      const deadline = Date.now() + waitMs;
      while (!ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return ended;
    };
    const stream = (status: number): StalledStream => ({
      status,
      endedByServer,
      close: () => socket.destroy(),
    });
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      resolve(stream(Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0)));
    };
    socket.on('data', onData);
    setTimeout(() => resolve(stream(0)), 10_000);
  });
}
