/** API process: `npm run start:api`. */
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { createCancelRequests } from '../queue/cancel-requests.js';
import { loadConfig } from '../config.js';
import { createPrismaClient } from '../db/index.js';
import { TRAINING_QUEUE } from '../queue/training-queue.js';
import { createLogger } from '../logger.js';
import { createApp } from './app.js';
import { createArtifactStore } from '../artifacts/create-artifact-store.js';
import { createApiKeyStore } from './auth/api-key-store.js';
import { createEventStreams, eventStreamLimits } from './events/event-stream.js';
import { createRunEventHub } from './events/run-event-hub.js';
import { createRunModelsService } from './models/run-models.service.js';

const config = loadConfig();
const logger = createLogger(config, 'api');
const prisma = createPrismaClient(config.DATABASE_URL);
// Without the offline queue, a submission fails fast (503, nothing created) while Redis is down
// instead of hanging for minutes.
const queue = new Queue(TRAINING_QUEUE, {
  connection: { url: config.REDIS_URL, enableOfflineQueue: false },
  prefix: config.QUEUE_PREFIX,
});
queue.on('error', (error) => logger.error({ err: error }, 'queue connection error'));
await queue.waitUntilReady();
// Rate-limit counters; while it is down the limiter counts in memory (see rate-limit.ts).
const redis = new Redis(config.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
redis.on('error', (error) => logger.error({ err: error }, 'rate-limit redis error'));
const cancels = createCancelRequests(config.REDIS_URL, config.QUEUE_PREFIX);
// Live run events for /v1/runs/:id/events (its own subscriber connection, made on first use).
const eventHub = createRunEventHub(redis, config.QUEUE_PREFIX);
// Job started/completed/failed for the Prometheus counters.
const jobEvents = new QueueEvents(TRAINING_QUEUE, {
  connection: { url: config.REDIS_URL },
  prefix: config.QUEUE_PREFIX,
});
jobEvents.on('error', (error) => logger.warn({ err: error }, 'queue events connection error'));

const apiKeys = createApiKeyStore(prisma);
// The open streams, to end them on shutdown; each ends too when its key is revoked.
const eventStreams = createEventStreams({
  limits: eventStreamLimits(config),
  liveKeyIds: (ids) => apiKeys.liveKeyIds(ids),
  logger,
});
await apiKeys.syncEnvKeys(config.API_KEYS);
const liveKeys = await prisma.apiKey.count({ where: { revokedAt: null } });
logger.info({ envKeys: config.API_KEYS.length, liveKeys }, 'API keys ready');
if (liveKeys === 0) {
  logger.warn('no API keys: every /v1 request will get 401; create one with npm run keys:create');
}

const artifacts = createArtifactStore(config);
const models = createRunModelsService({ prisma, artifacts, config, logger });

const server = createApp({
  models,
  maxImageBytes: config.PREDICT_MAX_BYTES,
  prisma,
  queue,
  cancels,
  redis,
  logger,
  config,
  apiKeys,
  eventHub,
  eventStreams,
  jobEvents,
  retry: { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS },
}).listen(config.PORT, () => {
  logger.info({ port: config.PORT }, 'API listening');
});

async function shutdown(signal: string): Promise<void> {
  logger.info({ signal }, 'shutting down');
  // Finish in-flight requests before closing what they use. Event streams never finish by
  // themselves: they are ended (their clients reconnect elsewhere; new ones get 503), and idle
  // keep-alive connections closed, so that close() does not wait for them. Whatever is still
  // open shortly before the grace period ends is cut, so the process exits rather than killed.
  const closed = new Promise((resolve) => server.close(resolve));
  eventStreams.endAll();
  server.closeIdleConnections();
  const backstop = setTimeout(
    () => {
      logger.warn('connections still open at the shutdown deadline; closing them');
      server.closeAllConnections();
    },
    Math.max(1000, config.SHUTDOWN_GRACE_MS - 5000),
  );
  await closed;
  clearTimeout(backstop);
  await Promise.allSettled([
    models.close(), // terminates the model threads
    queue.close(),
    jobEvents.close(),
    eventHub.close(),
    cancels.close(),
    redis.quit(),
    artifacts.close(),
    prisma.$disconnect(),
  ]);
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
