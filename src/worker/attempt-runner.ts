/**
 * One attempt of a run's job, the same for training and evaluation, in the worker (parent)
 * process: claim the run in a device slot, start its child, turn the child's messages into
 * fenced writes through a RunWriter (pausing the child while the writes back up), heartbeat the
 * run, kill the child the moment the attempt loses its lease, and end the attempt by the child's
 * outcome. What differs between the two kinds of job — what the child is started with, the
 * messages only a training child sends, the files left to clean up — is an AttemptKind.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { LeaseLostError, type Lease } from '../runs/lease.js';
import type { RunLifecycle } from '../runs/run-lifecycle.js';
import type { EvalResult, TrainResult } from '../spec/run-results.js';
import type { CheckpointSync } from '../checkpoints/checkpoint-sync.js';
import type { DeviceSlot, SlotPool } from './device-slots.js';
import { endFailedAttempt } from './failed-attempt.js';
import type { ChildMessage, EvalStartMessage, StartMessage } from './ipc.js';
import type { RunProgress, RunStore } from './run-store.js';
import { RunWriter } from './run-writer.js';
import {
  startTrainingProcess,
  type TrainingOutcome,
  type TrainingProcess,
} from './training-process.js';

export interface AttemptDeps {
  store: RunStore;
  /** Every status change of the run (claim, success, failure, cancel, requeue). */
  lifecycle: RunLifecycle;
  /** Uploads the child's checkpoints to the artifact store; downloads the ones it reads. */
  checkpoints: CheckpointSync;
  config: Pick<
    Config,
    | 'TRAIN_BACKEND'
    | 'METRICS_EVERY_STEPS'
    | 'METRICS_BUFFER_POINTS'
    | 'WRITE_RETRY_LIMIT_MS'
    | 'DATA_ROOT'
    | 'DATA_MAX_BYTES'
    | 'DATA_MAX_IMAGES'
    | 'DATA_THREADS'
    | 'DATA_PREFETCH_BATCHES'
    | 'CANCEL_GRACE_MS'
  >;
  /** Resident memory each child may use (the worker's budget over its slots). */
  childMemoryBytes: number;
  /** Whether a cancel was requested for the run (polled from Redis). */
  cancelRequested(runId: string): Promise<boolean>;
  logger: Logger;
  workerId: string;
  slots: SlotPool;
  /** Running children by run id, so shutdown, cancels and lost locks can reach each. */
  running: Map<string, TrainingProcess>;
  /** True once the worker is shutting down: a job claimed meanwhile is stopped at once. */
  isStopping: () => boolean;
  /** The environment children start from (the slot adds its device). */
  childEnv: NodeJS.ProcessEnv;
  /** How often a run's heartbeat is written while its child runs. @defaultValue 5000 */
  runHeartbeatMs?: number;
}

/** One claimed attempt, as the kind of job sees it. */
export interface Attempt {
  runId: string;
  lease: Lease;
  log: Logger;
  attempt: number;
  slot: DeviceSlot;
  writer: RunWriter;
  /** Queues a write after every write before it and waits for all of them. */
  finish(what: string, op: () => Promise<unknown>): Promise<void>;
}

/** What a kind of job starts its child with, and what it does around it. */
export interface ChildPlan {
  start: StartMessage | EvalStartMessage;
  /** What the child is expected to need (src/model/memory-estimate.ts), for an OutOfMemory's message. */
  memoryEstimateBytes: number;
  /** Messages only this kind's child sends (the shared ones are handled by the runner). */
  onMessage?(message: ChildMessage): void;
  /** After the child exited and every write landed: scratch files, stray uploads. */
  cleanup(leaseLost: boolean): Promise<void>;
}

export interface AttemptKind<P extends { runId: string }> {
  /** In log lines and the crash error's message. */
  noun: 'training' | 'evaluation';
  /** The error name of a child that exited without saying why. */
  crashName: string;
  payload: z.ZodType<P>;
  /** Fetches what the child needs; may end the attempt itself (writing its status) by throwing. */
  prepare(attempt: Attempt, payload: P): Promise<ChildPlan>;
  /** Log fields of a success. */
  summary(result: TrainResult | EvalResult): object;
}

/** A child's result is the job's return value; a job that found nothing to do skips. */
export type AttemptOutcome = TrainResult | EvalResult | { skipped: true };

/** Progress is written to Redis and Postgres at most this often. */
const PROGRESS_EVERY_MS = 1000;

/** The BullMQ processor of one kind of job. */
export function createAttemptRunner<P extends { runId: string }>(
  deps: AttemptDeps,
  kind: AttemptKind<P>,
) {
  return async (job: Job, token?: string): Promise<AttemptOutcome> => {
    const parsed = kind.payload.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`invalid job payload: ${parsed.error.message}`);
    const { runId } = parsed.data;
    const log = deps.logger.child({ runId, jobId: job.id });
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const slot = deps.slots.acquire();
    try {
      const claimant = { workerId: deps.workerId, attempt, device: slot.id };
      const lease = await deps.lifecycle.claim(runId, claimant);
      if (!lease) {
        log.info('run is no longer queued (cancelled or finished); skipping the job');
        return { skipped: true };
      }
      // A cancel that came while the job waited (or between two attempts) ends it here.
      if (await deps.cancelRequested(runId).catch(() => false)) {
        await deps.lifecycle.cancel(lease);
        log.info(`${kind.noun} cancelled before it started`);
        return { skipped: true };
      }
      log.info({ attempt, maxAttempts, device: slot.id }, `${kind.noun} started`);
      const supervised = new SupervisedAttempt(deps, { runId, lease, log, attempt, slot }, job);
      return await supervised.run(kind, parsed.data, { maxAttempts, token });
    } finally {
      deps.slots.release(slot);
    }
  };
}

/** A claimed attempt from its child's start to the run's status. */
class SupervisedAttempt {
  readonly attempt: Attempt;
  private child: TrainingProcess | undefined;
  private leaseLost = false;
  private lastProgressAt = 0;
  private unwrittenProgress: RunProgress | undefined;
  private memoryEstimateBytes = 0;

  constructor(
    private readonly deps: AttemptDeps,
    claimed: Omit<Attempt, 'writer' | 'finish'>,
    private readonly job: Job,
  ) {
    const writer = new RunWriter({
      log: claimed.log,
      writeMetrics: (points) => deps.store.writeMetrics(claimed.lease, points),
      maxBufferedPoints: deps.config.METRICS_BUFFER_POINTS,
      giveUpAfterMs: deps.config.WRITE_RETRY_LIMIT_MS,
      // SIGSTOP/SIGCONT: the child keeps its state and simply waits while Postgres is away.
      onBackpressure: (paused) => this.child?.kill(paused ? 'SIGSTOP' : 'SIGCONT'),
      onFatal: (error) => {
        if (error instanceof LeaseLostError) this.leaseLost = true;
        claimed.log.error(
          { err: error },
          'cannot record this attempt any more; stopping its child',
        );
        this.child?.kill('SIGKILL');
      },
    });
    this.attempt = {
      ...claimed,
      writer,
      finish: async (what, op) => {
        writer.push(what, op);
        await writer.drain();
      },
    };
  }

  async run<P extends { runId: string }>(
    kind: AttemptKind<P>,
    payload: P,
    end: { maxAttempts: number; token: string | undefined },
  ): Promise<AttemptOutcome> {
    const plan = await kind.prepare(this.attempt, payload);
    const outcome = await this.superviseChild(plan);
    this.memoryEstimateBytes = plan.memoryEstimateBytes;
    const { writer, log } = this.attempt;
    // Progress is throttled; the step the child really reached is written last.
    this.flushProgress();
    try {
      await writer.drain();
      await plan.cleanup(this.leaseLost);
      return await this.end(kind, outcome, end);
    } catch (error) {
      // Another attempt owns the run now: this job's outcome must not touch it.
      if (this.leaseLost || error instanceof LeaseLostError) {
        log.warn('attempt ended without writing a status: the run belongs to another attempt');
        return { skipped: true };
      }
      throw error;
    }
  }

  /** Starts the child and heartbeats the run until the child has exited. */
  private async superviseChild(plan: ChildPlan): Promise<TrainingOutcome> {
    const { runId, lease, log, slot } = this.attempt;
    const { deps } = this;
    const child = startTrainingProcess(
      plan.start,
      (message) => {
        if (!this.onSharedMessage(message)) plan.onMessage?.(message);
      },
      { ...deps.childEnv, ...slot.env },
      { memoryBytes: deps.childMemoryBytes, cancelGraceMs: deps.config.CANCEL_GRACE_MS },
    );
    this.child = child;
    deps.running.set(runId, child);
    if (deps.isStopping()) child.stop('shutdown');
    const heartbeat = setInterval(() => {
      deps.store.heartbeat(lease).catch((error: unknown) => {
        if (error instanceof LeaseLostError) {
          this.leaseLost = true;
          log.error('the run was claimed by another attempt; stopping this one');
          child.kill('SIGKILL');
        } else log.debug({ err: error }, 'run heartbeat failed');
      });
    }, deps.runHeartbeatMs ?? 5000);
    return child.finished.finally(() => {
      clearInterval(heartbeat);
      deps.running.delete(runId);
    });
  }

  /** Messages every child sends; false for the ones its kind handles. */
  private onSharedMessage(message: ChildMessage): boolean {
    const { writer, lease, log } = this.attempt;
    const { store, workerId } = this.deps;
    switch (message.type) {
      case 'backend':
        log.info({ backend: message.backend }, `running on ${message.backend.name}`);
        writer.push('backend', () => store.setBackend(lease, workerId, message.backend.name));
        return true;
      case 'metrics':
        writer.metrics(message.points);
        return true;
      case 'progress': {
        const { step, totalSteps, epoch } = message;
        this.unwrittenProgress = { step, totalSteps, epoch };
        if (Date.now() - this.lastProgressAt >= PROGRESS_EVERY_MS || step === totalSteps)
          this.flushProgress();
        return true;
      }
      default:
        return false;
    }
  }

  /** Writes the newest progress not written yet, to the queue (not waited for) and the run. */
  private flushProgress(): void {
    const progress = this.unwrittenProgress;
    if (!progress) return;
    const { writer, lease, log } = this.attempt;
    this.unwrittenProgress = undefined;
    this.lastProgressAt = Date.now();
    // Redis is not waited for: an outage there must not hold up the Postgres writes.
    this.job
      .updateProgress(progress)
      .catch((error: unknown) =>
        log.debug({ err: error }, 'could not report progress to the queue'),
      );
    writer.push('progress', () => this.deps.store.updateProgress(lease, progress));
  }

  /** The run's status by the child's outcome; throws what BullMQ must see (retry, delay). */
  private async end<P extends { runId: string }>(
    kind: AttemptKind<P>,
    outcome: TrainingOutcome,
    { maxAttempts, token }: { maxAttempts: number; token: string | undefined },
  ): Promise<AttemptOutcome> {
    const { lease, log, finish, attempt } = this.attempt;
    const { lifecycle } = this.deps;
    // A cancel was asked of the child: however it ended short of success (stopped, killed
    // after the grace, killed by the kernel before its first step), the run ends cancelled,
    // never re-queued.
    if (this.child?.cancelRequested && outcome.outcome !== 'done') {
      await finish('cancel', () => lifecycle.cancel(lease));
      const step = outcome.outcome === 'stopped' ? outcome.step : undefined;
      log.info({ ended: outcome.outcome, step }, `${kind.noun} cancelled`);
      return { skipped: true };
    }
    switch (outcome.outcome) {
      case 'done':
        await finish('success', () => lifecycle.succeed(lease, outcome.result));
        log.info(kind.summary(outcome.result), `${kind.noun} succeeded`);
        return outcome.result;
      case 'stopped':
        // (A cancelled child ended above.) Graceful shutdown: back in the queue without spending an attempt.
        await finish('requeue', () => lifecycle.requeue(lease));
        await this.job.moveToDelayed(Date.now(), token);
        log.info({ step: outcome.step }, 'worker shutting down; run put back in the queue');
        throw new DelayedError();
      case 'failed':
      case 'crashed':
        return endFailedAttempt({
          outcome,
          attempt,
          maxAttempts,
          kind: { crashName: kind.crashName, noun: kind.noun },
          memoryEstimateBytes: this.memoryEstimateBytes,
          lifecycle,
          lease,
          finish,
          log,
        });
    }
  }
}
