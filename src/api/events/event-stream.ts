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
 * Hostile or stalled clients cannot make a stream hold memory (docs/limits.md, "Live event
 * streams"):
 *
 * - A client that does not read fills the socket, then Node's buffer: once `write()` reports the
 *   buffer full and it holds more than `maxBufferedBytes` (EVENT_STREAM_BUFFER_BYTES), the
 *   stream is destroyed and its buffer freed. Events announce, the database records: the client
 *   reconnects and reads the run again, as after any dropped connection.
 * - An event whose frame is larger than `maxEventBytes` (EVENT_MAX_BYTES) is not sent; a small
 *   `too-large` event takes its place, naming the event and the limit, so the client reads the run
 *   (its metrics) over REST. Each event's frame is built once, however many streams relay it.
 * - One key holds at most `maxStreamsPerKey` (EVENT_STREAMS_PER_KEY) streams on this process;
 *   one more gets 429.
 * - Every `keyCheckMs` (EVENT_STREAM_KEY_CHECK_MS), while streams are open, their keys are looked
 *   up: the streams of a key revoked since (on any replica, by keys:revoke or the API_KEYS sync)
 *   end. A failed lookup (Postgres away) leaves the streams open until the next check.
 *
 * An event stream never ends by itself, so a graceful shutdown (which waits for open requests)
 * calls `endAll()`: open streams end (clients reconnect, to another replica or to this one once it
 * is back), and streams asked for afterwards, on a keep-alive connection that was busy at the
 * time, get 503 with `Connection: close`.
 */
import type { Response } from 'express';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
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
  /**
   * A new stream for this response, held by the API key `keyId`: 429 when that key holds its
   * maximum already, 503 once `endAll()` was called.
   */
  start(res: Response, keyId: string): EventStream;
  /** Ends every open stream and refuses new ones (shutdown). */
  endAll(): void;
}

export interface EventStreamLimits {
  maxBufferedBytes: number;
  maxEventBytes: number;
  maxStreamsPerKey: number;
  keyCheckMs: number;
}

export interface EventStreamOptions {
  limits?: EventStreamLimits;
  /** Which of these key ids are live (not revoked); the others' streams are ended. */
  liveKeyIds?: (ids: string[]) => Promise<Set<string>>;
  logger?: Logger;
}

/** The defaults of src/config.ts. */
export const DEFAULT_EVENT_STREAM_LIMITS: EventStreamLimits = {
  maxBufferedBytes: 256 * 1024,
  maxEventBytes: 64 * 1024,
  maxStreamsPerKey: 10,
  keyCheckMs: 5000,
};

export function eventStreamLimits(
  config: Pick<
    Config,
    | 'EVENT_STREAM_BUFFER_BYTES'
    | 'EVENT_MAX_BYTES'
    | 'EVENT_STREAMS_PER_KEY'
    | 'EVENT_STREAM_KEY_CHECK_MS'
  >,
): EventStreamLimits {
  return {
    maxBufferedBytes: config.EVENT_STREAM_BUFFER_BYTES,
    maxEventBytes: config.EVENT_MAX_BYTES,
    maxStreamsPerKey: config.EVENT_STREAMS_PER_KEY,
    keyCheckMs: config.EVENT_STREAM_KEY_CHECK_MS,
  };
}

/**
 * What a stream sends instead of an event larger than EVENT_MAX_BYTES: which event, how large,
 * and the limit. The client reads the run (its metrics) again over REST.
 */
export interface TooLargeEvent {
  type: 'too-large';
  /** The run the event was about, when it named one. */
  runId?: string;
  /** The type of the event that was not sent (`metrics`). */
  event: string;
  bytes: number;
  limit: number;
  detail: string;
}

/**
 * Frames by event, for events sent to many streams (the hub hands every stream the same object):
 * a 64 KiB event relayed to 300 streams is serialised once, not 300 times.
 */
const frames = new WeakMap<object, string>();

function frameOf({ type, data }: StreamEvent, maxEventBytes: number): string {
  const cacheable = typeof data === 'object' && data !== null;
  const cached = cacheable ? frames.get(data) : undefined;
  if (cached !== undefined) return cached;
  let frame = `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  const bytes = Buffer.byteLength(frame);
  if (bytes > maxEventBytes) {
    const runId = (data as { runId?: unknown } | null)?.runId;
    const notice: TooLargeEvent = {
      type: 'too-large',
      ...(typeof runId === 'string' ? { runId } : {}),
      event: type,
      bytes,
      limit: maxEventBytes,
      detail: `this ${type} event (${bytes} bytes) is larger than EVENT_MAX_BYTES (${maxEventBytes}); read the run again over REST`,
    };
    frame = `event: too-large\ndata: ${JSON.stringify(notice)}\n\n`;
  }
  if (cacheable) frames.set(data, frame);
  return frame;
}

/** One open stream as the registry sees it. */
interface OpenStream {
  keyId: string;
  end(): void;
}

export function createEventStreams(options: EventStreamOptions = {}): EventStreams {
  const limits = options.limits ?? DEFAULT_EVENT_STREAM_LIMITS;
  const open = new Map<Response, OpenStream>();
  /** Streams per key, from start() until the response closes (opening ones count too). */
  const perKey = new Map<string, number>();
  let closing = false;
  let keyCheck: NodeJS.Timeout | undefined;

  /** Ends the open streams whose key is no longer live. */
  async function checkKeys(): Promise<void> {
    if (!options.liveKeyIds || open.size === 0) return;
    const ids = [...new Set([...open.values()].map((s) => s.keyId))];
    let live: Set<string>;
    try {
      live = await options.liveKeyIds(ids);
    } catch (error) {
      options.logger?.warn({ err: error }, 'event streams: key check failed; streams kept');
      return;
    }
    for (const stream of [...open.values()]) if (!live.has(stream.keyId)) stream.end();
  }

  function track(res: Response, stream: OpenStream): void {
    open.set(res, stream);
    if (!keyCheck && options.liveKeyIds) {
      keyCheck = setInterval(() => void checkKeys(), limits.keyCheckMs);
      keyCheck.unref();
    }
  }

  function untrack(res: Response, keyId: string): void {
    open.delete(res);
    const count = (perKey.get(keyId) ?? 1) - 1;
    if (count > 0) perKey.set(keyId, count);
    else perKey.delete(keyId);
    if (open.size === 0 && keyCheck) {
      clearInterval(keyCheck);
      keyCheck = undefined;
    }
  }

  function admit(keyId: string): void {
    if (closing)
      throw new HttpError(
        503,
        'Service Unavailable',
        'this API process is shutting down; reconnect',
        [],
        { Connection: 'close' },
      );
    const held = perKey.get(keyId) ?? 0;
    if (held >= limits.maxStreamsPerKey)
      throw new HttpError(
        429,
        'Too Many Requests',
        `this key has ${held} event streams open on this API process, the most EVENT_STREAMS_PER_KEY (${limits.maxStreamsPerKey}) allows; close one first`,
      );
    perKey.set(keyId, held + 1);
  }

  return {
    start(res, keyId) {
      admit(keyId);
      return startStream(res, {
        limits,
        logger: options.logger,
        isClosing: () => closing,
        onOpen: (stream) => track(res, { keyId, ...stream }),
        onGone: () => untrack(res, keyId),
      });
    },
    endAll() {
      closing = true;
      for (const stream of [...open.values()]) stream.end();
      open.clear();
    },
  };
}

/** One stream's life: held frames, the 200 answer, writes under the buffer cap, keepalives. */
function startStream(
  res: Response,
  hooks: {
    limits: EventStreamLimits;
    logger: Logger | undefined;
    isClosing(): boolean;
    onOpen(stream: { end(): void }): void;
    onGone(): void;
  },
): EventStream {
  const { maxBufferedBytes, maxEventBytes } = hooks.limits;
  const held: string[] = [];
  let heldBytes = 0;
  let opened = false;
  let gone = false;
  let onClose = (): void => undefined;
  let keepalive: NodeJS.Timeout | undefined;
  let reportedGone = false;
  const reportGone = (): void => {
    if (reportedGone) return;
    reportedGone = true;
    hooks.onGone();
  };
  // The response's close: when the client goes away, or the answer ends (an error, endAll, a drop).
  res.on('close', () => {
    gone = true;
    clearInterval(keepalive);
    reportGone();
    onClose();
  });
  // A client that left while its key was being checked closed the response before the listener
  // above existed: without this, its place under EVENT_STREAMS_PER_KEY would be held for ever.
  if (!res.socket || res.socket.destroyed) {
    gone = true;
    reportGone();
  }
  /** The client does not read: free what waits for it; it reconnects and reads the run again. */
  const drop = (): void => {
    hooks.logger?.warn(
      { buffered: res.writableLength, limit: maxBufferedBytes },
      'event stream closed: its client does not read (EVENT_STREAM_BUFFER_BYTES)',
    );
    gone = true;
    res.destroy();
  };
  const write = (frame: string): void => {
    // write() returns false once the socket's buffer is full; past the cap, give up on the client.
    if (!res.write(frame) && res.writableLength > maxBufferedBytes) drop();
  };
  return {
    send(event) {
      if (gone) return;
      const frame = frameOf(event, maxEventBytes);
      if (opened) return write(frame);
      held.push(frame);
      heldBytes += frame.length;
      if (heldBytes > maxBufferedBytes) drop();
    },
    open(first, cleanup) {
      // A client that left before start() was called sent no close event to us.
      if (!res.socket || res.socket.destroyed) gone = true;
      if (gone || hooks.isClosing()) {
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
      // A client that does not read cannot make the ending wait: what is unsent is dropped.
      hooks.onOpen({ end: () => (res.writableLength > 0 ? res.destroy() : res.end()) });
      write(frameOf(first, maxEventBytes));
      for (const f of held.splice(0)) if (!gone) write(f);
      // No keepalive on a stream whose buffer is not drained: it has something to send anyway.
      keepalive = setInterval(() => {
        if (!res.writableNeedDrain) res.write(': keepalive\n\n');
      }, KEEPALIVE_MS);
    },
  };
}
