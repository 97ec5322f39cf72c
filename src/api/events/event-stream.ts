/**
 * The answer of an event-stream route (`text/event-stream`): headers that keep proxies from
 * buffering, one frame per event (`event: <type>` + `data: <JSON>`), a comment line every 15 s so
 * an idle stream is not closed, and cleanup when the client goes away.
 *
 * Frames sent before `open()` are held back: a route subscribes to its events before it reads
 * the snapshot it opens with, so nothing that happens in between is lost, and nothing is written
 * before the route knows whether to answer 200 or an error.
 */
import type { Request, Response } from 'express';

const KEEPALIVE_MS = 15_000;

/**
 * The streams this process has open. An event stream never ends by itself, so a graceful
 * shutdown (which waits for open requests) ends them first: see endEventStreams.
 */
const openStreams = new Set<Response>();

/**
 * Ends every open event stream of this process. Clients reconnect (to another replica, or to
 * this one once it is back) and read again what they follow.
 */
export function endEventStreams(): void {
  for (const res of openStreams) res.end();
  openStreams.clear();
}

export interface StreamEvent {
  type: string;
  data: unknown;
}

export interface EventStream {
  send(event: StreamEvent): void;
  /**
   * Starts the 200 answer: `first` (the snapshot), then what was sent so far. `onClose` runs
   * when the client goes away.
   */
  open(first: StreamEvent, onClose: () => void): void;
}

function frame({ type, data }: StreamEvent): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function eventStream(req: Request, res: Response): EventStream {
  const held: string[] = [];
  let opened = false;
  return {
    send(event) {
      if (opened) res.write(frame(event));
      else held.push(frame(event));
    },
    open(first, onClose) {
      res.status(200).set({
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.flushHeaders();
      opened = true;
      openStreams.add(res);
      res.write(frame(first));
      for (const f of held.splice(0)) res.write(f);
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      req.on('close', () => {
        openStreams.delete(res);
        clearInterval(keepalive);
        onClose();
      });
    },
  };
}
