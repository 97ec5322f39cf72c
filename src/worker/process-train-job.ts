/**
 * The BullMQ processor for training jobs: claims the run, trains it in a child process in one of
 * the worker's device slots, and turns the child's messages into Postgres writes (metrics,
 * progress, checkpoints, status) through a RunWriter that survives database outages.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../config.js';
import { trainJobSchema } from '../queue/job-payloads.js';
import type { EvalResult, TrainResult } from '../spec/run-results.js';
import type { Logger } from '../logger.js';
import type { CheckpointSync } from './checkpoint-sync.js';
import type { SlotPool } from './device-slots.js';
import type { ChildMessage } from './ipc.js';
import { LeaseLostError } from '../runs/lease.js';
import type { RunLifecycle } from '../runs/run-lifecycle.js';
import type { RunStore } from './run-store.js';
import { endFailedAttempt } from './failed-attempt.js';
import { RunWriter } from './run-writer.js';
import { startTrainingProcess, type TrainingProcess } from './training-process.js';

export interface TrainJobDeps {
  store: RunStore;
  /** Every status change of the run (claim, success, failure, cancel, requeue). */
  lifecycle: RunLifecycle;
  /** Uploads the child's checkpoints to the artifact store; downloads the one to resume from. */
  checkpoints: CheckpointSync;
  config: Pick<
    Config,
    | 'TRAIN_BACKEND'
    | 'METRICS_EVERY_STEPS'
    | 'METRICS_BUFFER_POINTS'
    | 'WRITE_RETRY_LIMIT_MS'
    | 'DATA_ROOT'
    | 'DATA_THREADS'
    | 'DATA_PREFETCH_BATCHES'
  >;
  logger: Logger;
  workerId: string;
  slots: SlotPool;
  /** Running children by run id, so shutdown can ask each to stop. */
  running: Map<string, TrainingProcess>;
  /** True once the worker is shutting down: a job claimed meanwhile is stopped at once. */
  isStopping: () => boolean;
}

/** Runs without a checkpoint spec still get one at graceful shutdown; only the newest is kept. */
const SHUTDOWN_ONLY_RETENTION = { keepLatest: 1, keepBest: 0, metric: 'val/accuracy' };

/** Progress is written to Redis and Postgres at most this often. */
const PROGRESS_EVERY_MS = 1000;

/** The run's heartbeat (liveness shown on the run) while its child trains. */
const RUN_HEARTBEAT_MS = 5000;

/** A child runs training or evaluation; either result is the job's return value. */
export type TrainJobOutcome = TrainResult | EvalResult | { skipped: true };

export function createTrainJobProcessor(deps: TrainJobDeps) {
  return async (job: Job, token?: string): Promise<TrainJobOutcome> => {
    const parsed = trainJobSchema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`invalid job payload: ${parsed.error.message}`);
    const { runId } = parsed.data;
    const log = deps.logger.child({ runId, jobId: job.id });
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const { store, checkpoints, lifecycle } = deps;

    const slot = deps.slots.acquire();
    try {
      const lease = await lifecycle.claim(runId, {
        workerId: deps.workerId,
        attempt,
        device: slot.id,
      });
      if (!lease) {
        log.info('run is no longer queued (cancelled or finished); skipping the job');
        return { skipped: true };
      }
      log.info({ attempt, maxAttempts, device: slot.id }, 'training started');

      // Set once the child starts; the writer's callbacks may fire before that.
      const training: { child?: TrainingProcess } = {};
      let leaseLost = false;
      const writer = new RunWriter({
        log,
        writeMetrics: (points) => store.writeMetrics(lease, points),
        maxBufferedPoints: deps.config.METRICS_BUFFER_POINTS,
        giveUpAfterMs: deps.config.WRITE_RETRY_LIMIT_MS,
        // SIGSTOP/SIGCONT: the child keeps its state and simply waits while Postgres is away.
        onBackpressure: (paused) => training.child?.kill(paused ? 'SIGSTOP' : 'SIGCONT'),
        onFatal: (error) => {
          if (error instanceof LeaseLostError) leaseLost = true;
          log.error({ err: error }, 'cannot record this attempt any more; stopping its training');
          training.child?.kill('SIGKILL');
        },
      });

      let lastProgress = 0;
      let latestProgress: { step: number; totalSteps: number; epoch: number } | undefined;
      let progressWritten = true;
      const checkpointSpec = parsed.data.spec.checkpoint;
      const onMessage = (message: ChildMessage): void => {
        switch (message.type) {
          case 'backend':
            log.info({ backend: message.backend }, `training on ${message.backend.name}`);
            writer.push('backend', () =>
              store.setBackend(lease, deps.workerId, message.backend.name),
            );
            break;
          case 'data-info':
            writer.push('data info', () => store.setDataInfo(lease, message.info));
            break;
          case 'resumed':
            log.info(
              { step: message.step, location: message.location },
              'resuming from checkpoint',
            );
            writer.push('resume', () => store.markResumed(lease, message.step));
            break;
          case 'checkpoint-rejected':
            log.warn(
              { location: message.location, reason: message.reason },
              'checkpoint not usable',
            );
            writer.push('rejected checkpoint', async () => {
              const location = resume.locationOf(message.location);
              if (location !== undefined) await store.deleteCheckpoint(lease, location);
            });
            break;
          case 'fresh-start':
            log.warn('no usable checkpoint; training starts over');
            writer.push('fresh start', () => store.markResumed(lease, 0));
            break;
          case 'metrics':
            writer.metrics(message.points);
            break;
          case 'progress': {
            const progress = {
              step: message.step,
              totalSteps: message.totalSteps,
              epoch: message.epoch,
            };
            latestProgress = progress;
            progressWritten = false;
            if (
              Date.now() - lastProgress >= PROGRESS_EVERY_MS ||
              progress.step === progress.totalSteps
            ) {
              lastProgress = Date.now();
              progressWritten = true;
              // Redis is not waited for: an outage there must not hold up the Postgres writes.
              job
                .updateProgress(progress)
                .catch((error: unknown) =>
                  log.debug({ err: error }, 'could not report progress to the queue'),
                );
              writer.push('progress', () => store.updateProgress(lease, progress));
            }
            break;
          }
          case 'checkpoint':
            log.info({ step: message.step, location: message.location }, 'checkpoint saved');
            // Uploaded here, not in the child: training goes on while the bytes travel.
            writer.push('checkpoint', async () => {
              const location = await checkpoints.upload(runId, message);
              await store.recordCheckpoint(lease, { ...message, location });
              const deleted = await store.applyRetention(
                lease,
                checkpointSpec ?? SHUTDOWN_ONLY_RETENTION,
              );
              if (deleted.length > 0) log.debug({ deleted }, 'old checkpoints removed');
            });
            break;
          default:
            break;
        }
      };

      let resume: Awaited<ReturnType<CheckpointSync['fetchForResume']>>;
      try {
        resume = await checkpoints.fetchForResume(runId, await store.checkpointLocations(runId));
      } catch (error) {
        // The store (or Postgres) is unreachable: a transient fault. The run goes back to
        // queued with the cause, and BullMQ retries the job after its backoff.
        const cause = error instanceof Error ? error : new Error(String(error));
        log.warn({ err: cause }, 'could not fetch the checkpoint to resume from; will retry');
        await lifecycle
          .requeue(lease, {
            name: cause.name,
            message: cause.message,
            attempt,
            unrecoverable: false,
          })
          .catch(() => undefined);
        throw cause;
      }
      for (const { location, reason } of resume.unusable) {
        log.warn({ location, reason }, 'checkpoint not usable');
        writer.push('unusable checkpoint', () => store.deleteCheckpoint(lease, location));
      }
      const dataInfo = await store.dataInfo(runId);
      const child = startTrainingProcess(
        {
          type: 'start',
          job: parsed.data,
          artifactDir: checkpoints.writeDir(runId),
          backend: deps.config.TRAIN_BACKEND,
          ...(slot.threads !== undefined ? { threads: slot.threads } : {}),
          metricsEverySteps: deps.config.METRICS_EVERY_STEPS,
          resumeFrom: resume.dirs,
          dataRoot: deps.config.DATA_ROOT,
          dataThreads: deps.config.DATA_THREADS,
          prefetchBatches: deps.config.DATA_PREFETCH_BATCHES,
          ...(dataInfo ? { dataInfo } : {}),
        },
        onMessage,
        { ...process.env, ...slot.env },
      );
      training.child = child;
      deps.running.set(runId, child);
      if (deps.isStopping()) child.stop('shutdown');
      const heartbeat = setInterval(() => {
        store.heartbeat(lease).catch((error: unknown) => {
          if (error instanceof LeaseLostError) {
            leaseLost = true;
            log.error('the run was claimed by another attempt; stopping this one');
            child.kill('SIGKILL');
          } else log.debug({ err: error }, 'run heartbeat failed');
        });
      }, RUN_HEARTBEAT_MS);
      const outcome = await child.finished.finally(() => {
        clearInterval(heartbeat);
        deps.running.delete(runId);
      });
      // Progress is throttled; the step the child really reached is written last.
      const finalProgress = latestProgress;
      if (finalProgress && !progressWritten)
        writer.push('progress', () => store.updateProgress(lease, finalProgress));

      /** Queues the final status write and waits for every write before it. */
      const finish = async (what: string, op: () => Promise<unknown>): Promise<void> => {
        writer.push(what, op);
        await writer.drain();
      };
      try {
        await writer.drain();
        // This host's scratch files go, and stored checkpoints that never got their row (a
        // worker died between upload and row) — the latter only while this attempt still owns
        // the run, so it cannot remove what a newer attempt has just uploaded.
        await store
          .checkpointLocations(runId)
          .then((recorded) => checkpoints.cleanup(runId, leaseLost ? undefined : recorded))
          .catch((error: unknown) =>
            log.warn({ err: error }, 'could not clean up checkpoint files'),
          );
        switch (outcome.outcome) {
          case 'done':
            await finish('success', () => lifecycle.succeed(lease, outcome.result));
            log.info({ result: outcome.result }, 'training succeeded');
            return outcome.result;
          case 'stopped':
            if (outcome.reason === 'cancel') {
              await finish('cancel', () => lifecycle.cancel(lease));
              log.info({ step: outcome.step }, 'training cancelled');
              return { skipped: true };
            }
            // Graceful shutdown: back in the queue without spending an attempt.
            await finish('requeue', () => lifecycle.requeue(lease));
            await job.moveToDelayed(Date.now(), token);
            log.info({ step: outcome.step }, 'worker shutting down; run put back in the queue');
            throw new DelayedError();
          case 'failed':
          case 'crashed':
            return endFailedAttempt({
              outcome,
              attempt,
              maxAttempts,
              kind: { crashName: 'TrainingProcessCrashed', noun: 'training' },
              lifecycle,
              lease,
              finish,
              log,
            });
        }
      } catch (error) {
        // Another attempt owns the run now: this job's outcome must not touch it.
        if (leaseLost || error instanceof LeaseLostError) {
          log.warn('attempt ended without writing a status: the run belongs to another attempt');
          return { skipped: true };
        }
        throw error;
      }
    } finally {
      deps.slots.release(slot);
    }
  };
}
