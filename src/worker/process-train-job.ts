/**
 * The BullMQ processor for training jobs: claims the run, trains it in a child process, and
 * turns the child's messages into Postgres writes (metrics, progress, checkpoints, status).
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../config.js';
import { trainJobSchema, type TrainResult } from '../jobs.js';
import type { Logger } from '../logger.js';
import type { CheckpointSync } from './checkpoint-sync.js';
import type { ChildMessage } from './ipc.js';
import type { RunStore } from './run-store.js';
import { startTrainingProcess, type TrainingProcess } from './training-process.js';

export interface TrainJobDeps {
  store: RunStore;
  /** Uploads the child's checkpoints to the artifact store; downloads the one to resume from. */
  checkpoints: CheckpointSync;
  config: Pick<Config, 'TRAIN_BACKEND' | 'TRAIN_THREADS' | 'METRICS_EVERY_STEPS'>;
  logger: Logger;
  workerId: string;
  /** Running children by run id, so shutdown can ask each to stop. */
  running: Map<string, TrainingProcess>;
  /** True once the worker is shutting down: a job claimed meanwhile is stopped at once. */
  isStopping: () => boolean;
}

/** Tries a Postgres write a few times before giving up on it (a blip must not lose data). */
async function withRetries<T>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (error) {
      if (attempt >= 4) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}

/**
 * Runs without a checkpoint spec still get one at graceful shutdown and at the end (the model
 * users export); only the newest is kept.
 */
const SHUTDOWN_ONLY_RETENTION = { keepLatest: 1, keepBest: 0, metric: 'val/accuracy' };

/** Progress is written to Redis and Postgres at most this often. */
const PROGRESS_EVERY_MS = 1000;

export type TrainJobOutcome = TrainResult | { skipped: true };

export function createTrainJobProcessor(deps: TrainJobDeps) {
  return async (job: Job, token?: string): Promise<TrainJobOutcome> => {
    const parsed = trainJobSchema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`invalid job payload: ${parsed.error.message}`);
    const { runId } = parsed.data;
    const log = deps.logger.child({ runId, jobId: job.id });
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const { store, checkpoints } = deps;

    if (!(await store.markRunning(runId, deps.workerId, attempt))) {
      log.info('run is no longer queued (cancelled or finished); skipping the job');
      return { skipped: true };
    }
    log.info({ attempt, maxAttempts }, 'training started');

    // Postgres writes happen in message order; a failed write is logged and training goes on.
    let writes = Promise.resolve();
    const write = (what: string, op: () => Promise<unknown>): void => {
      writes = writes
        .then(() => withRetries(op))
        .then(
          () => undefined,
          (error: unknown) => log.error({ err: error }, `could not write ${what}`),
        );
    };
    let lastProgress = 0;
    let latestProgress: { step: number; totalSteps: number; epoch: number } | undefined;
    let progressWritten = true;
    const checkpointSpec = parsed.data.spec.checkpoint;
    const onMessage = (message: ChildMessage): void => {
      switch (message.type) {
        case 'backend':
          log.info({ backend: message.backend }, `training on ${message.backend.name}`);
          write('backend', () => store.setBackend(runId, deps.workerId, message.backend.name));
          break;
        case 'resumed':
          log.info({ step: message.step, location: message.location }, 'resuming from checkpoint');
          write('resume', () => store.markResumed(runId, message.step));
          break;
        case 'checkpoint-rejected':
          log.warn({ location: message.location, reason: message.reason }, 'checkpoint not usable');
          write('rejected checkpoint', async () => {
            const location = resume.locationOf(message.location);
            if (location !== undefined) await store.deleteCheckpoint(runId, location);
          });
          break;
        case 'fresh-start':
          log.warn('no usable checkpoint; training starts over');
          write('fresh start', () => store.markResumed(runId, 0));
          break;
        case 'metrics':
          write('metrics', () => store.writeMetrics(runId, message.points));
          break;
        case 'progress':
          latestProgress = {
            step: message.step,
            totalSteps: message.totalSteps,
            epoch: message.epoch,
          };
          progressWritten = false;
          if (
            Date.now() - lastProgress >= PROGRESS_EVERY_MS ||
            message.step === message.totalSteps
          ) {
            lastProgress = Date.now();
            progressWritten = true;
            const progress = {
              step: message.step,
              totalSteps: message.totalSteps,
              epoch: message.epoch,
            };
            write('progress', async () => {
              await job.updateProgress(progress);
              await store.updateProgress(runId, progress);
            });
          }
          break;
        case 'checkpoint':
          log.info({ step: message.step, location: message.location }, 'checkpoint saved');
          // Uploaded here, not in the child: training goes on while the bytes travel.
          write('checkpoint', async () => {
            const location = await checkpoints.upload(runId, message);
            await store.recordCheckpoint(runId, { ...message, location });
            const deleted = await store.applyRetention(
              runId,
              checkpointSpec ?? SHUTDOWN_ONLY_RETENTION,
            );
            if (deleted.length > 0) log.debug({ deleted }, 'old checkpoints removed');
          });
          break;
        default:
          break;
      }
    };

    const resume = await checkpoints.fetchForResume(runId, await store.checkpointLocations(runId));
    for (const { location, reason } of resume.unusable) {
      log.warn({ location, reason }, 'checkpoint not usable');
      await withRetries(() => store.deleteCheckpoint(runId, location));
    }
    const child = startTrainingProcess(
      {
        type: 'start',
        job: parsed.data,
        artifactDir: checkpoints.writeDir(runId),
        backend: deps.config.TRAIN_BACKEND,
        ...(deps.config.TRAIN_THREADS !== undefined ? { threads: deps.config.TRAIN_THREADS } : {}),
        metricsEverySteps: deps.config.METRICS_EVERY_STEPS,
        resumeFrom: resume.dirs,
      },
      onMessage,
    );
    deps.running.set(runId, child);
    if (deps.isStopping()) child.stop('shutdown');
    const outcome = await child.finished.finally(() => deps.running.delete(runId));
    // Progress is throttled; the step the child really reached is written last.
    const finalProgress = latestProgress;
    if (finalProgress && !progressWritten) {
      write('progress', () => store.updateProgress(runId, finalProgress));
    }
    await writes;
    await store
      .checkpointLocations(runId)
      .then((recorded) => checkpoints.cleanup(runId, recorded))
      .catch((error: unknown) => log.warn({ err: error }, 'could not clean up checkpoint files'));

    switch (outcome.outcome) {
      case 'done':
        await withRetries(() => store.markSucceeded(runId, outcome.result));
        log.info({ result: outcome.result }, 'training succeeded');
        return outcome.result;
      case 'stopped':
        if (outcome.reason === 'cancel') {
          await withRetries(() => store.markCancelled(runId));
          log.info({ step: outcome.step }, 'training cancelled');
          return { skipped: true };
        }
        // Graceful shutdown: back in the queue without spending an attempt.
        await withRetries(() => store.markQueued(runId));
        await job.moveToDelayed(Date.now(), token);
        log.info({ step: outcome.step }, 'worker shutting down; run put back in the queue');
        throw new DelayedError();
      case 'failed':
      case 'crashed': {
        const error =
          outcome.outcome === 'failed'
            ? { ...outcome.error, attempt }
            : {
                name: 'TrainingProcessCrashed',
                message: `training process exited (code ${outcome.code}, signal ${outcome.signal})`,
                unrecoverable: false,
                attempt,
              };
        if (error.unrecoverable || attempt >= maxAttempts) {
          await withRetries(() => store.markFailed(runId, error));
          log.error({ error }, 'training failed');
          if (error.unrecoverable) throw new UnrecoverableError(error.message);
        } else {
          await withRetries(() => store.markQueued(runId, error));
          log.warn({ error }, 'training failed; will retry');
        }
        throw new Error(error.message);
      }
    }
  };
}
