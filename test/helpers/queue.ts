import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { TRAINING_QUEUE } from '../../src/queue/training-queue.js';

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** The training queue under a prefix of its own, so test files never see each other's jobs. */
export async function createTestQueue(
  label: string,
  redisUrl = REDIS_URL,
): Promise<{ prefix: string; queue: Queue; close(): Promise<void> }> {
  const prefix = `gq-test-${label}-${randomBytes(4).toString('hex')}`;
  const queue = new Queue(TRAINING_QUEUE, { connection: { url: redisUrl }, prefix });
  // A test that restarts its Redis expects reconnect errors; the queue reconnects by itself.
  queue.on('error', () => undefined);
  await queue.waitUntilReady();
  return {
    prefix,
    queue,
    close: async () => {
      await queue.obliterate({ force: true });
      await queue.close();
      // Other keys under the prefix (cancel requests) go too.
      const redis = new Redis(redisUrl);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    },
  };
}
