/**
 * The answers of the event-stream routes (`text/event-stream`), and the registry of those an API
 * process has open.
 *
 * A stream: headers that keep proxies from buffering, one frame per event (`event: <type>` +
 * `data: <JSON>`), a comment line every 15 s so an idle stream is not closed, and cleanup when the
 * client goes away, at any point: also while the route is still subscribing or reading its
 * snapshot (the close handler is there from the start).
 *
 * Frames sent before `open()` are held back: a route subscribes to its events before it reads
 * the snapshot it opens with, so nothing that happens in between is lost, and nothing is written
 * before the route knows whether to answer 200 or an error.
 *
 * An event stream never ends by itself, so a graceful shutdown (which waits for open requests)
 * calls `endAll()`: open streams end (clients reconnect, to another replica or to this one once it
 * is back), and streams asked for afterwards, on a keep-alive connection that was busy at the
 * time, get 503 with `Connection: close`.
 */
import type { Response } from 'express';
import { HttpError } from '../errors.js';

const KEEPALIVE_MS = 15_000;

export interface StreamEvent {
  type: string;
  data: unknown;
}

export interface EventStream {
  send(event: StreamEvent): void;
  /**
   * Starts the 200 answer: `first` (the snapshot), then what was sent so far. `onClose` runs
   * when the client goes away, at once if it already has.
   */
  open(first: StreamEvent, onClose: () => void): void;
}

export interface EventStreams {
  /** A new stream for this response; 503 once `endAll()` was called. */
  start(res: Response): EventStream;
  /** Ends every open stream and refuses new ones (shutdown). */
  endAll(): void;
}

function frame({ type, data }: StreamEvent): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function createEventStreams(): EventStreams {
  const open = new Set<Response>();
  let closing = false;
  return {
    start(res) {
      if (closing)
        throw new HttpError(
          503,
          'Service Unavailable',
          'this API process is shutting down; reconnect',
          [],
          { Connection: 'close' },
        );
      const held: string[] = [];
      let opened = false;
      let gone = false;
      let onClose = (): void => undefined;
      let keepalive: NodeJS.Timeout | undefined;
      // The response's close: when the client goes away, or the answer ends (an error, endAll).
      res.on('close', () => {
        gone = true;
        open.delete(res);
        clearInterval(keepalive);
        onClose();
      });
      return {
        send(event) {
          if (gone) return;
          if (opened) res.write(frame(event));
          else held.push(frame(event));
        },
        open(first, cleanup) {
          // A client that left before start() was called sent no close event to us.
          if (!res.socket || res.socket.destroyed) gone = true;
          if (gone || closing) {
            cleanup();
            if (!gone) res.end();
            return;
          }
          onClose = cleanup;
          res.status(200).set({
            'Content-Type': 'text/event-stream; charset=utf-8',
            'Cache-Control': 'no-cache, no-transform',
            Connection: 'keep-alive',
            'X-Accel-Buffering': 'no',
          });
          res.flushHeaders();
          opened = true;
          open.add(res);
          res.write(frame(first));
          for (const f of held.splice(0)) res.write(f);
          keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
        },
      };
    },
    endAll() {
      closing = true;
      for (const res of open) res.end();
      open.clear();
    },
  };
}
