/**
 * One Redis subscriber connection per API process, shared by every open event stream: a stream
 * adds a listener for its run's channel, and the channel is subscribed while anyone listens.
 * The connection is made on the first listener, so an API that serves no stream opens none.
 */
import type { Redis } from 'ioredis';
import { allRunsEventChannel, runEventChannel, type RunEvent } from '../../run-events.js';

export type RunEventListener = (event: RunEvent) => void;

export interface RunEventHub {
  /** Listens to one run's events; call the returned function to stop. */
  listen(runId: string, listener: RunEventListener): Promise<() => void>;
  /** Listens to every run's status, progress and checkpoint events (no metric batches). */
  listenAll(listener: RunEventListener): Promise<() => void>;
  close(): Promise<void>;
}

export function createRunEventHub(redis: Redis, prefix: string): RunEventHub {
  let subscriber: Redis | undefined;
  const listeners = new Map<string, Set<RunEventListener>>();

  function connection(): Redis {
    if (subscriber) return subscriber;
    // A subscriber must queue its SUBSCRIBEs while it (re)connects, and resubscribes by itself.
    const sub = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, message: string) => {
      const set = listeners.get(channel);
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

  async function listenTo(channel: string, listener: RunEventListener): Promise<() => void> {
    let set = listeners.get(channel);
    if (!set) {
      listeners.set(channel, (set = new Set()));
      await connection().subscribe(channel);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && listeners.get(channel) === set) {
        listeners.delete(channel);
        void subscriber?.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  return {
    listen: (runId, listener) => listenTo(runEventChannel(prefix, runId), listener),
    listenAll: (listener) => listenTo(allRunsEventChannel(prefix), listener),
    async close() {
      listeners.clear();
      await subscriber?.quit().catch(() => undefined);
      subscriber = undefined;
    },
  };
}
