/**
 * Worker process: `npm run start:worker`. Builds the worker's connections from the config and
 * hands them to createWorker (create-worker.ts): training and eval jobs from the queue, one per
 * device slot, each in its own child process (src/worker/child/) while this process keeps the
 * job lock, writes metrics, checkpoints and status to Postgres, and heartbeats.
 */
import { Redis } from 'ioredis';
import { createArtifactStore } from '../artifacts/create-artifact-store.js';
import { loadConfig } from '../config.js';
import { createPrismaClient } from '../db/index.js';
import { createLogger } from '../logger.js';
import { createCancelRequests } from '../queue/cancel-requests.js';
import { createRunEventPublisher } from '../queue/run-events.js';
import { createWorker } from './create-worker.js';

const config = loadConfig();
const logger = createLogger(config, 'worker');
const prisma = createPrismaClient(config.DATABASE_URL);
const artifacts = createArtifactStore(config);
// Live run events (status, progress, metric batches, checkpoints) for the dashboards, published
// after each write. Best effort on a connection of their own that fails fast while Redis is
// away, so an outage never queues them up in memory or holds up training.
const eventsRedis = new Redis(config.REDIS_URL, {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
});
eventsRedis.on('error', (error) => logger.debug({ err: error }, 'events redis error'));
const events = createRunEventPublisher(eventsRedis, config.QUEUE_PREFIX, (error) =>
  logger.debug({ err: error }, 'could not publish a run event'),
);
const cancels = createCancelRequests(config.REDIS_URL, config.QUEUE_PREFIX);

const worker = await createWorker({
  config,
  logger,
  prisma,
  artifacts,
  events,
  cancels,
  childEnv: process.env,
});

async function shutdown(signal: string): Promise<void> {
  await worker.stop(signal, () => setTimeout(() => process.exit(1), 1000).unref());
  await Promise.allSettled([
    cancels.close(),
    eventsRedis.quit(),
    artifacts.close(),
    prisma.$disconnect(),
  ]);
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
