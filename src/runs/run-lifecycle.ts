/**
 * The run lifecycle: the only code that writes a run's status. Each transition is one function
 * that is guarded (by the attempt's lease, or by the status it expects to find), writes the row
 * and then publishes the status event, so no path can change a status without the event.
 *
 *   queue ──claim──▶ running ──succeed──▶ succeeded
 *     ▲                │ ├────fail──────▶ failed ──retry──▶ queued
 *     └────requeue─────┘ └────cancel────▶ cancelled
 *
 * External runs start `running` and are finished by their trainer; a run no attempt owns any
 * more is failed (`failUnowned`) or requeued (`requeueLost`) by the worker's reconciler.
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { Prisma, type PrismaClient, type Run } from '../db/index.js';
import { enqueueRun, type RetryPolicy } from '../queue/enqueue-run.js';
import type { RunEventPublisher } from '../queue/run-events.js';
import { TRAINING_QUEUE } from '../queue/training-queue.js';
import type { EvalResult, TrainResult } from '../spec/run-results.js';
import { UNFINISHED_STATUSES as UNFINISHED } from '../spec/run-status.js';
import { fencedUpdate, type Lease } from './lease.js';
import { QueueUnavailableError, RunConflictError, type RunError } from './run-errors.js';

export interface RunLifecycleDeps {
  prisma: PrismaClient;
  /** Every status change is announced here after its write. */
  events: RunEventPublisher;
  /** The queue of training and eval jobs, for transitions that hand a run to it. */
  queue: Queue;
  retry: RetryPolicy;
}

/** A run to be queued: its row, before the database gives it an id. */
export interface NewQueuedRun {
  kind: 'train' | 'eval';
  name: string | null;
  priority: number;
  config: Prisma.InputJsonValue;
  idempotencyKey: string | null;
  /** The hash of the request created under `idempotencyKey` (see api/runs/idempotent-create). */
  idempotencyHash?: string | null;
}

/** Who claims a run: the worker, the attempt's number, and the device slot it trains on. */
export interface Claimant {
  workerId: string;
  attempt: number;
  device?: string;
}

/** Each transition of a run's status, guarded, written and announced. */
export class RunLifecycle {
  private readonly prisma: PrismaClient;

  constructor(private readonly deps: RunLifecycleDeps) {
    this.prisma = deps.prisma;
  }

  private announce(runId: string, status: Run['status']): void {
    void this.deps.events.publish({ type: 'status', runId, status });
  }

  private enqueue(run: Run | Pick<Run, 'id' | 'kind' | 'config' | 'priority'>): Promise<void> {
    return enqueueRun(this.deps.queue, run, this.deps.retry);
  }

  /** A fenced write of this attempt's final (or requeued) status, then its event. */
  private async end(
    lease: Lease,
    status: Run['status'],
    data: Prisma.RunUpdateManyMutationInput,
  ): Promise<void> {
    await fencedUpdate(this.prisma, lease, { ...data, status, lease: null });
    this.announce(lease.runId, status);
  }

  /**
   * Writes a new queued run, then adds its job (job id = run id). Without a job there is no
   * run: the row is removed again and QueueUnavailableError thrown. A duplicate idempotency
   * key surfaces as Prisma's P2002 for the caller to resolve.
   */
  async queue(data: NewQueuedRun): Promise<Run> {
    const run = await this.prisma.run.create({ data });
    try {
      await this.enqueue(run);
    } catch {
      await this.prisma.run.delete({ where: { id: run.id } }).catch(() => undefined);
      throw new QueueUnavailableError(
        `could not enqueue the run on '${TRAINING_QUEUE}'; nothing was created, try again`,
      );
    }
    this.announce(run.id, 'queued');
    return run;
  }

  /**
   * Adds the job of a run that is still queued again, for a replayed submission: if the first
   * request died between writing the row and adding the job, the replay repairs it (BullMQ
   * ignores a second add with the same job id). Not a transition: the status stays.
   */
  async ensureEnqueued(run: Run): Promise<Run> {
    if (run.status !== 'queued') return run;
    try {
      await this.enqueue(run);
    } catch {
      throw new QueueUnavailableError('could not reach the queue; try again');
    }
    return run;
  }

  /** An external run: running at once, never queued; its trainer finishes it. */
  async startExternal(data: {
    name: string;
    config: Prisma.InputJsonValue;
    idempotencyKey: string | null;
    idempotencyHash?: string | null;
  }): Promise<Run> {
    const now = new Date();
    const run = await this.prisma.run.create({
      data: {
        kind: 'external',
        status: 'running',
        priority: 0,
        ...data,
        startedAt: now,
        heartbeatAt: now,
      },
    });
    this.announce(run.id, 'running');
    return run;
  }

  /** Ends a running external run; null when it is not running (any more). */
  async finishExternal(
    id: string,
    status: 'succeeded' | 'failed' | 'cancelled',
    error?: RunError,
  ): Promise<Run | null> {
    const { count } = await this.prisma.run.updateMany({
      where: { id, kind: 'external', status: 'running' },
      data: { status, finishedAt: new Date(), ...(error ? { error: { ...error } } : {}) },
    });
    if (count === 0) return null;
    this.announce(id, status);
    return this.prisma.run.findUniqueOrThrow({ where: { id } });
  }

  /**
   * Claims a queued (or re-delivered running) run for one attempt of a worker. Null when the
   * run is gone or already finished/cancelled: the job must then do nothing.
   */
  async claim(runId: string, claimant: Claimant): Promise<Lease | null> {
    const token = randomUUID();
    const now = new Date();
    const { count } = await this.prisma.run.updateMany({
      where: { id: runId, status: { in: [...UNFINISHED] } },
      data: {
        status: 'running',
        workerId: claimant.workerId,
        device: claimant.device ?? null,
        attempts: claimant.attempt,
        lease: token,
        heartbeatAt: now,
        startedAt: now,
        finishedAt: null,
      },
    });
    if (count !== 1) return null;
    this.announce(runId, 'running');
    return { runId, token };
  }

  async succeed(lease: Lease, result: TrainResult | EvalResult): Promise<void> {
    // An earlier attempt's error no longer describes the run.
    await this.end(lease, 'succeeded', {
      result: { ...result },
      error: Prisma.DbNull,
      finishedAt: new Date(),
    });
  }

  async fail(lease: Lease, error: RunError): Promise<void> {
    await this.end(lease, 'failed', { error: { ...error }, finishedAt: new Date() });
  }

  async cancel(lease: Lease): Promise<void> {
    await this.end(lease, 'cancelled', { finishedAt: new Date() });
  }

  /** Back to queued: BullMQ's retry (or the job after a graceful shutdown) runs it again. */
  async requeue(lease: Lease, error?: RunError): Promise<void> {
    await this.end(lease, 'queued', { ...(error ? { error: { ...error } } : {}), workerId: null });
  }

  /**
   * Cancels a run whose job was removed before a worker started it (or that has no job):
   * null when the run finished meanwhile.
   */
  async cancelUnstarted(id: string): Promise<Run | null> {
    const { count } = await this.prisma.run.updateMany({
      where: { id, status: { in: [...UNFINISHED] } },
      data: { status: 'cancelled', finishedAt: new Date() },
    });
    if (count !== 1) return null;
    this.announce(id, 'cancelled');
    return this.prisma.run.findUniqueOrThrow({ where: { id } });
  }

  /**
   * Puts a failed run back in the queue with a fresh job (its old one already removed): it
   * resumes from its newest checkpoint with a new set of attempts.
   */
  async retry(id: string): Promise<Run> {
    const { count } = await this.prisma.run.updateMany({
      where: { id, status: 'failed' },
      data: { status: 'queued', finishedAt: null, workerId: null, lease: null },
    });
    if (count === 0) throw new RunConflictError(`run ${id} changed meanwhile; try again`);
    // The run as accepted: a worker may take the job the moment it is added.
    const queued = await this.prisma.run.findUniqueOrThrow({ where: { id } });
    try {
      await this.enqueue(queued);
    } catch {
      // No event was sent for the queued row: to every reader the run stayed failed.
      await this.prisma.run.update({
        where: { id },
        data: { status: 'failed', finishedAt: new Date() },
      });
      throw new QueueUnavailableError('could not reach the queue; try again');
    }
    this.announce(id, 'queued');
    return queued;
  }

  /**
   * Takes a run whose job vanished from the queue from any attempt still writing to it (it
   * cannot finish properly without its job) and hands it to the queue again. False when the
   * run changed since `run` was read.
   */
  async requeueLost(
    run: Pick<Run, 'id' | 'kind' | 'config' | 'priority' | 'status' | 'lease'>,
  ): Promise<boolean> {
    const { count } = await this.prisma.run.updateMany({
      where: { id: run.id, status: run.status, lease: run.lease },
      data: { status: 'queued', workerId: null, lease: null },
    });
    if (count === 0) return false;
    await this.enqueue(run);
    this.announce(run.id, 'queued');
    return true;
  }

  /**
   * Fails a run that no attempt owns any more (BullMQ gave up on its job, or the job is
   * gone): not fenced, but never touches a finished run.
   */
  async failUnowned(runId: string, error: RunError): Promise<boolean> {
    const { count } = await this.prisma.run.updateMany({
      where: { id: runId, status: { in: [...UNFINISHED] } },
      data: { status: 'failed', error: { ...error }, lease: null, finishedAt: new Date() },
    });
    if (count !== 1) return false;
    this.announce(runId, 'failed');
    return true;
  }
}

/** The run lifecycle over `deps`. */
export function createRunLifecycle(deps: RunLifecycleDeps): RunLifecycle {
  return new RunLifecycle(deps);
}
