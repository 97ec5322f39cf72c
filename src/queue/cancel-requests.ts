/**
 * Cancel requests for running runs, kept in Redis so any API replica can ask and the worker that
 * owns the run (on any host) sees it: `<prefix>:cancel:<runId>`, expiring after a day. Workers
 * poll the keys of the runs they are training; a key cannot be missed the way a pub/sub message
 * sent during a reconnect can.
 */
import { Redis } from 'ioredis';

const TTL_SECONDS = 24 * 3600;

export interface CancelRequests {
  request(runId: string): Promise<void>;
  /** Forgets a request, so a run retried after it failed is not cancelled by an old one. */
  withdraw(runId: string): Promise<void>;
  /** The subset of `runIds` whose cancellation was requested. */
  requested(runIds: string[]): Promise<string[]>;
  close(): Promise<void>;
}

export function createCancelRequests(redisUrl: string, prefix: string): CancelRequests {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, lazyConnect: false });
  // Connection errors surface as failed commands, which callers handle (a 503, a warning);
  // without a listener ioredis would also print each reconnect attempt as unhandled.
  redis.on('error', () => undefined);
  const key = (runId: string): string => `${prefix}:cancel:${runId}`;
  return {
    async request(runId) {
      await redis.set(key(runId), '1', 'EX', TTL_SECONDS);
    },
    async withdraw(runId) {
      await redis.del(key(runId));
    },
    async requested(runIds) {
      if (runIds.length === 0) return [];
      const flags = await redis.mget(runIds.map(key));
      return runIds.filter((_, i) => flags[i] !== null);
    },
    async close() {
      await redis.quit();
    },
  };
}
