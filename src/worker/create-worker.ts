/**
 * The worker (parent) process's work, given its connections: takes training and eval jobs from
 * the queue, one per device slot, runs each attempt's child, polls cancel requests for its
 * runs, heartbeats its row, reconciles runs whose jobs were lost, and stops gracefully.
 * `src/worker/main.ts` builds the connections from the config and calls this; tests call it
 * in-process.
 */
import os from 'node:os';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { CancelRequests } from '../queue/cancel-requests.js';
import type { RunEventPublisher } from '../queue/run-events.js';
import { JOB_NAMES, TRAINING_QUEUE } from '../queue/training-queue.js';
import { createRunLifecycle, type RunLifecycle } from '../runs/run-lifecycle.js';
import { createAttemptRunner, type AttemptDeps } from './attempt-runner.js';
import { createCheckpointSync } from '../checkpoints/checkpoint-sync.js';
import { planSlots, SlotPool } from './device-slots.js';
import { evalAttempt } from './eval-attempt.js';
import { withRunEvents } from './publishing-run-store.js';
import { startReconciler } from './reconciler.js';
import { createRunStore } from './run-store.js';
import { trainAttempt } from './train-attempt.js';
import type { TrainingProcess } from './training-process.js';
import { hostMemoryBytes } from './host-memory.js';
import { registerWorker } from './worker-registry.js';

/** How often the worker looks for cancel requests for its runs. */
const CANCEL_POLL_MS = 1000;

export type WorkerConfig = AttemptDeps['config'] &
  Pick<
    Config,
    | 'REDIS_URL'
    | 'QUEUE_PREFIX'
    | 'SCRATCH_ROOT'
    | 'JOB_ATTEMPTS'
    | 'JOB_BACKOFF_MS'
    | 'WORKER_LOCK_MS'
    | 'WORKER_STALLED_INTERVAL_MS'
    | 'RECONCILE_EVERY_MS'
    | 'SHUTDOWN_GRACE_MS'
    | 'WORKER_GPUS'
    | 'WORKER_CONCURRENCY'
    | 'TRAIN_THREADS'
    | 'WORKER_MEMORY_BYTES'
    | 'METRICS_MAX_SERIES_PER_RUN'
  >;

export interface WorkerDeps {
  config: WorkerConfig;
  logger: Logger;
  prisma: PrismaClient;
  artifacts: ArtifactStore;
  /** Live run events; best effort, so a connection that fails fast while Redis is away. */
  events: RunEventPublisher;
  cancels: CancelRequests;
  /** The environment children start from. */
  childEnv: NodeJS.ProcessEnv;
  /** @defaultValue `<hostname>-<pid>` */
  workerId?: string;
  /** How often a run's heartbeat is written while its child runs. @defaultValue 5000 */
  runHeartbeatMs?: number;
}

export interface RunningWorker {
  readonly id: string;
  /** The children running now, by run id. */
  readonly running: ReadonlyMap<string, TrainingProcess>;
  /**
   * Takes no new jobs, asks every child to stop (their runs go back to the queue) and waits;
   * past SHUTDOWN_GRACE_MS the children are killed and `onGraceOver` is called. Closes the
   * connections this worker opened, not the ones it was given.
   */
  stop(reason: string, onGraceOver?: () => void): Promise<void>;
}

export async function createWorker(deps: WorkerDeps): Promise<RunningWorker> {
  const { config, prisma } = deps;
  const workerId = deps.workerId ?? `${os.hostname()}-${process.pid}`;
  const logger = deps.logger.child({ workerId });
  const running = new Map<string, TrainingProcess>();
  const slots = new SlotPool(planSlots(config));
  const retry = { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS };
  const connection = { url: config.REDIS_URL, maxRetriesPerRequest: null };
  // The queue as the lifecycle and the reconciler see it (job states, re-adding a lost job).
  const queue = new Queue(TRAINING_QUEUE, { connection, prefix: config.QUEUE_PREFIX });
  queue.on('error', (error) => logger.warn({ err: error }, 'queue connection error'));
  const lifecycle = createRunLifecycle({ prisma, events: deps.events, queue, retry });
  let stopping = false;

  // Each slot's child may use an equal share; the API refuses jobs above the largest share.
  const memoryBytes = config.WORKER_MEMORY_BYTES ?? hostMemoryBytes();
  const jobMemoryBytes = Math.floor(memoryBytes / slots.slots.length);
  const registration = await registerWorker(prisma, logger, {
    id: workerId,
    backend: config.TRAIN_BACKEND,
    devices: {
      slots: slots.slots.map((s) => s.id).join(','),
      cpus: os.availableParallelism(),
      memoryBytes,
      jobMemoryBytes,
    },
  });
  const attemptDeps: AttemptDeps = {
    store: withRunEvents(
      createRunStore(prisma, deps.artifacts, {
        maxSeriesPerRun: config.METRICS_MAX_SERIES_PER_RUN,
      }),
      deps.events,
    ),
    lifecycle,
    checkpoints: createCheckpointSync({
      artifacts: deps.artifacts,
      scratchRoot: config.SCRATCH_ROOT,
    }),
    config,
    logger,
    workerId,
    slots,
    running,
    isStopping: () => stopping,
    childEnv: deps.childEnv,
    childMemoryBytes: jobMemoryBytes,
    cancelRequested: async (runId) => (await deps.cancels.requested([runId])).length > 0,
    ...(deps.runHeartbeatMs !== undefined ? { runHeartbeatMs: deps.runHeartbeatMs } : {}),
  };
  const worker = startBullWorker(config, slots, attemptDeps);
  watchWorker(worker, { logger, running, lifecycle });
  const reconcilerRedis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  reconcilerRedis.on('error', (error) => logger.debug({ err: error }, 'redis connection error'));
  const reconciler = startReconciler(
    { prisma, queue, lifecycle, logger, retry, redis: reconcilerRedis },
    config.RECONCILE_EVERY_MS,
  );
  const cancelPoll = pollCancelRequests(deps.cancels, running, logger);
  logger.info(
    {
      queue: TRAINING_QUEUE,
      prefix: config.QUEUE_PREFIX,
      slots: slots.slots.map((s) => s.id),
      jobMemoryBytes,
      lockMs: config.WORKER_LOCK_MS,
    },
    'worker ready',
  );

  const closeOwnConnections = async (): Promise<void> => {
    clearInterval(cancelPoll);
    reconciler.stop();
    await registration.stop();
    await Promise.allSettled([queue.close(), reconcilerRedis.quit()]);
  };
  return {
    id: workerId,
    running,
    async stop(reason, onGraceOver) {
      if (stopping) return;
      stopping = true;
      await stopGracefully(
        { worker, running, logger, graceMs: config.SHUTDOWN_GRACE_MS },
        reason,
        onGraceOver,
      );
      await closeOwnConnections();
      logger.info('stopped');
    },
  };
}

/**
 * Takes no new jobs and asks every child to stop between steps (their runs go back to the
 * queue), waiting for them; past `graceMs` the children are killed: their jobs' locks expire
 * and another worker resumes them from their last checkpoint.
 */
async function stopGracefully(
  deps: { worker: Worker; running: Map<string, TrainingProcess>; logger: Logger; graceMs: number },
  reason: string,
  onGraceOver: (() => void) | undefined,
): Promise<void> {
  const { worker, running, logger, graceMs } = deps;
  logger.info(
    { reason, running: running.size },
    'stopping: no new jobs; running ones go back to the queue',
  );
  const grace = setTimeout(() => {
    logger.error(
      { graceMs, running: [...running.keys()] },
      'grace period over; killing the training that is left',
    );
    for (const child of running.values()) child.kill('SIGKILL');
    onGraceOver?.();
  }, graceMs);
  grace.unref();
  const closing = worker.close();
  for (const child of running.values()) child.stop('shutdown');
  await closing;
  clearTimeout(grace);
}

/** The BullMQ worker: one queue, two job names, a job per device slot. */
function startBullWorker(config: WorkerConfig, slots: SlotPool, attemptDeps: AttemptDeps): Worker {
  const processTrainJob = createAttemptRunner(attemptDeps, trainAttempt(attemptDeps));
  const processEvalJob = createAttemptRunner(attemptDeps, evalAttempt(attemptDeps));
  return new Worker(
    TRAINING_QUEUE,
    // Evaluations wait in line with training for the same devices.
    (job: Job, token?: string) =>
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
}

/** What the worker does on BullMQ's events: lost locks kill children, final failures fail runs. */
function watchWorker(
  worker: Worker,
  deps: { logger: Logger; running: Map<string, TrainingProcess>; lifecycle: RunLifecycle },
): void {
  const { logger, running, lifecycle } = deps;
  worker.on('error', (error) => logger.error({ err: error }, 'worker error'));
  // A lost lock means another worker may take the job: stop the child here at once rather than
  // let two children write the same run.
  worker.on('lockRenewalFailed', (jobIds: string[]) => {
    for (const runId of jobIds) {
      const child = running.get(runId);
      if (!child) continue;
      logger.error({ runId, jobId: runId }, 'job lock lost; stopping its child');
      child.kill('SIGKILL');
    }
  });
  worker.on('failed', (job, error) => {
    logger.warn({ jobId: job?.id, err: error.message }, 'job failed');
    // Failures that never reached (or escaped) the processor — a job stalled too often, a claim
    // that threw on the last attempt — must still leave the run failed, not running or queued.
    if (!job?.id) return;
    const final =
      error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    const runError = { name: error.name, message: error.message, attempt: job.attemptsMade };
    lifecycle
      .failUnowned(job.id, { ...runError, unrecoverable: true })
      .catch((e: unknown) =>
        logger.error({ err: e, jobId: job.id }, 'could not mark the run failed'),
      );
  });
}

/** Cancel requests for the runs this worker runs: checked every second, acted on between steps. */
function pollCancelRequests(
  cancels: CancelRequests,
  running: Map<string, TrainingProcess>,
  logger: Logger,
): NodeJS.Timeout {
  return setInterval(() => {
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
}
