/**
 * One Redis subscriber connection per API process, shared by every open event stream: a stream
 * adds a listener for its run's channel, and the channel is subscribed while anyone listens.
 * The connection is made on the first listener, so an API that serves no stream opens none.
 * `listen` resolves once the channel's SUBSCRIBE is confirmed, for every caller (also those who
 * join a channel whose SUBSCRIBE is still on its way), so a stream that then reads its snapshot
 * misses no event published after it.
 *
 * While Redis is unreachable a SUBSCRIBE waits in the connection's offline queue: `listen` gives
 * up after `timeoutMs` (EVENT_SUBSCRIBE_TIMEOUT_MS) with a DependencyUnavailableError, which the
 * API answers with 503 and `Retry-After`, rather than holding the request open without an answer.
 */
import type { Redis } from 'ioredis';
import { allRunsEventChannel, runEventChannel, type RunEvent } from '../../queue/run-events.js';
import { DependencyUnavailableError } from '../outage-errors.js';

/** EVENT_SUBSCRIBE_TIMEOUT_MS's default (src/config.ts). */
const DEFAULT_SUBSCRIBE_TIMEOUT_MS = 5000;

export type RunEventListener = (event: RunEvent) => void;

export interface RunEventHub {
  /**
   * Listens to one run's events; call the returned function to stop. Rejects with
   * DependencyUnavailableError when the subscription is not confirmed within `timeoutMs`.
   */
  listen(runId: string, listener: RunEventListener, timeoutMs?: number): Promise<() => void>;
  /** Listens to every run's status, progress and checkpoint events (no metric batches). */
  listenAll(listener: RunEventListener, timeoutMs?: number): Promise<() => void>;
  close(): Promise<void>;
}

export function createRunEventHub(redis: Redis, prefix: string): RunEventHub {
  let subscriber: Redis | undefined;
  /** Per subscribed channel: its listeners, and its SUBSCRIBE's confirmation. */
  const channels = new Map<
    string,
    { listeners: Set<RunEventListener>; subscribed: Promise<unknown> }
  >();

  function connection(): Redis {
    if (subscriber) return subscriber;
    // A subscriber must queue its SUBSCRIBEs while it (re)connects, and resubscribes by itself.
    // No ready check: its INFO raced the first SUBSCRIBEs of a burst of streams, failed with
    // "Connection in subscriber mode" and took those SUBSCRIBEs down with it (500s).
    const sub = redis.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      enableReadyCheck: false,
    });
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, message: string) => {
      const set = channels.get(channel)?.listeners;
      if (!set) return;
      let event: RunEvent;
      try {
        event = JSON.parse(message) as RunEvent;
      } catch {
        return;
      }
      for (const listener of set) listener(event);
    });
    subscriber = sub;
    return sub;
  }

  async function listenTo(
    channel: string,
    listener: RunEventListener,
    timeoutMs = DEFAULT_SUBSCRIBE_TIMEOUT_MS,
  ): Promise<() => void> {
    let entry = channels.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), subscribed: connection().subscribe(channel) };
      channels.set(channel, entry);
    }
    const joined = entry;
    joined.listeners.add(listener);
    const stop = (): void => {
      joined.listeners.delete(listener);
      if (joined.listeners.size === 0 && channels.get(channel) === joined) {
        channels.delete(channel);
        void subscriber?.unsubscribe(channel).catch(() => undefined);
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new DependencyUnavailableError(
              `the event stream could not subscribe to Redis within EVENT_SUBSCRIBE_TIMEOUT_MS (${timeoutMs} ms); Redis is unreachable`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([joined.subscribed, timedOut]);
    } catch (error) {
      // The SUBSCRIBE may still go through later: the UNSUBSCRIBE stop() queues follows it.
      stop();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return stop;
  }

  return {
    listen: (runId, listener, timeoutMs) =>
      listenTo(runEventChannel(prefix, runId), listener, timeoutMs),
    listenAll: (listener, timeoutMs) => listenTo(allRunsEventChannel(prefix), listener, timeoutMs),
    async close() {
      channels.clear();
      const sub = subscriber;
      subscriber = undefined;
      // QUIT would wait in the offline queue for a Redis that is away.
      if (sub?.status === 'ready') await sub.quit().catch(() => undefined);
      else sub?.disconnect();
    },
  };
}
