/**
 * Worker process: `npm run start:worker`. Takes training jobs from the queue, one per device
 * slot; each job trains in its own child process while this process keeps the job lock, writes
 * metrics, checkpoints and status to Postgres, and heartbeats.
 */
import os from 'node:os';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createArtifactStore } from '../artifacts/create-artifact-store.js';
import { createCancelRequests } from '../queue/cancel-requests.js';
import { loadConfig } from '../config.js';
import { createPrismaClient } from '../db/index.js';
import { JOB_NAMES, TRAINING_QUEUE } from '../queue/training-queue.js';
import { createLogger } from '../logger.js';
import { createRunEventPublisher } from '../queue/run-events.js';
import { createCheckpointSync } from './checkpoint-sync.js';
import { planSlots, SlotPool } from './device-slots.js';
import { createEvalJobProcessor } from './process-eval-job.js';
import { createTrainJobProcessor } from './process-train-job.js';
import { startReconciler } from './reconciler.js';
import { withRunEvents } from './publishing-run-store.js';
import { createRunStore } from './run-store.js';
import { createRunLifecycle } from '../runs/run-lifecycle.js';
import type { TrainingProcess } from './training-process.js';
import { registerWorker } from './worker-registry.js';

/** How often the worker looks for cancel requests for its runs. */
const CANCEL_POLL_MS = 1000;

const config = loadConfig();
const workerId = `${os.hostname()}-${process.pid}`;
const logger = createLogger(config, 'worker').child({ workerId });
const prisma = createPrismaClient(config.DATABASE_URL);
const running = new Map<string, TrainingProcess>();
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
const store = withRunEvents(createRunStore(prisma, artifacts), events);
const checkpoints = createCheckpointSync({ artifacts, scratchRoot: config.SCRATCH_ROOT });
const cancels = createCancelRequests(config.REDIS_URL, config.QUEUE_PREFIX);
const slots = new SlotPool(planSlots(config));
const retry = { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS };
// The queue as the lifecycle and the reconciler see it (job states, re-adding a lost job).
const queue = new Queue(TRAINING_QUEUE, {
  connection: { url: config.REDIS_URL, maxRetriesPerRequest: null },
  prefix: config.QUEUE_PREFIX,
});
queue.on('error', (error) => logger.warn({ err: error }, 'queue connection error'));
const lifecycle = createRunLifecycle({ prisma, events, queue, retry });
let stopping = false;

const registration = await registerWorker(prisma, logger, {
  id: workerId,
  backend: config.TRAIN_BACKEND,
  devices: { slots: slots.slots.map((s) => s.id).join(','), cpus: os.availableParallelism() },
});

const jobDeps = {
  store,
  lifecycle,
  checkpoints,
  config,
  logger,
  workerId,
  slots,
  running,
  isStopping: () => stopping,
};
const processTrainJob = createTrainJobProcessor(jobDeps);
const processEvalJob = createEvalJobProcessor(jobDeps);
const worker = new Worker(
  TRAINING_QUEUE,
  // One queue, two job names: evaluations wait in line with training for the same devices.
  (job, token) =>
    job.name === JOB_NAMES.eval ? processEvalJob(job, token) : processTrainJob(job, token),
  {
    connection: { url: config.REDIS_URL, maxRetriesPerRequest: null },
    prefix: config.QUEUE_PREFIX,
    concurrency: slots.slots.length,
    // Training runs in a child, so this process's event loop stays free to renew locks.
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: config.WORKER_STALLED_INTERVAL_MS,
    // A job whose worker died goes back to the queue and resumes from its checkpoint; BullMQ
    // fails it once it has stalled more than twice over its life.
    maxStalledCount: 2,
  },
);
worker.on('error', (error) => logger.error({ err: error }, 'worker error'));
// A lost lock means another worker may take the job: stop training here at once rather than
// let two children write the same run.
worker.on('lockRenewalFailed', (jobIds: string[]) => {
  for (const runId of jobIds) {
    const child = running.get(runId);
    if (!child) continue;
    logger.error({ runId, jobId: runId }, 'job lock lost; stopping its training');
    child.kill('SIGKILL');
  }
});
worker.on('failed', (job, error) => {
  logger.warn({ jobId: job?.id, err: error.message }, 'job failed');
  // Failures that never reached (or escaped) the processor — a job stalled too often, a claim
  // that threw on the last attempt — must still leave the run failed, not running or queued.
  if (!job?.id) return;
  const final = error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
  if (!final) return;
  lifecycle
    .failUnowned(job.id, {
      name: error.name,
      message: error.message,
      attempt: job.attemptsMade,
      unrecoverable: true,
    })
    .catch((e: unknown) =>
      logger.error({ err: e, jobId: job.id }, 'could not mark the run failed'),
    );
});
const reconcilerRedis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
reconcilerRedis.on('error', (error) => logger.debug({ err: error }, 'redis connection error'));
const reconciler = startReconciler(
  { prisma, queue, lifecycle, logger, retry, redis: reconcilerRedis },
  config.RECONCILE_EVERY_MS,
);
logger.info(
  {
    queue: TRAINING_QUEUE,
    prefix: config.QUEUE_PREFIX,
    slots: slots.slots.map((s) => s.id),
    lockMs: config.WORKER_LOCK_MS,
  },
  'worker ready',
);

// Cancel requests for the runs this worker trains: checked every second, acted on between steps.
const cancelPoll = setInterval(() => {
  cancels
    .requested([...running.keys()])
    .then((runIds) => {
      for (const runId of runIds) {
        logger.info({ runId, jobId: runId }, 'cancel requested');
        running.get(runId)?.stop('cancel');
      }
    })
    .catch((error: unknown) => logger.warn({ err: error }, 'could not check cancel requests'));
}, CANCEL_POLL_MS);

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info(
    { signal, running: running.size },
    'stopping: no new jobs; running ones go back to the queue',
  );
  // Past the grace period the children are killed: their jobs' locks expire and another worker
  // resumes them from their last checkpoint.
  const grace = setTimeout(() => {
    logger.error(
      { graceMs: config.SHUTDOWN_GRACE_MS, running: [...running.keys()] },
      'grace period over; killing the training that is left',
    );
    for (const child of running.values()) child.kill('SIGKILL');
    setTimeout(() => process.exit(1), 1000).unref();
  }, config.SHUTDOWN_GRACE_MS);
  grace.unref();
  const closing = worker.close();
  for (const child of running.values()) child.stop('shutdown');
  await closing;
  clearTimeout(grace);
  clearInterval(cancelPoll);
  reconciler.stop();
  await registration.stop();
  await Promise.allSettled([
    cancels.close(),
    queue.close(),
    reconcilerRedis.quit(),
    eventsRedis.quit(),
    artifacts.close(),
    prisma.$disconnect(),
  ]);
  logger.info('stopped');
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
