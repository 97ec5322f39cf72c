/**
 * Everything the worker writes about a run, in Postgres. Writes are idempotent (metric points
 * unique on run+name+step, checkpoints on run+step) because BullMQ delivers at least once, and
 * fenced: claiming a run gives the attempt a lease token, and every later write of that attempt
 * checks it, so a worker that lost its job to another (a lost lock, a network partition) can
 * no longer change the run.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import { Prisma, type PrismaClient } from '../db/index.js';
import { insertMetricPoints } from '../db/metric-points.js';
import { dataInfoSchema, type DataInfo } from '../spec/data-info.js';
import { metricIsBetter as better } from '../spec/metric-name.js';
import { type CheckpointSpec } from '../spec/checkpoint-spec.js';
import { type EvalResult, type TrainResult } from '../spec/run-results.js';
import type { CheckpointSaved, MetricPointMessage } from './ipc.js';

export interface RunProgress {
  step: number;
  totalSteps: number;
  epoch: number;
}

/** The right of one attempt to write a run, from `claim` until its final status. */
export interface Lease {
  runId: string;
  token: string;
}

/** The run is no longer this attempt's: another worker claimed it, or it was cancelled. */
export class LeaseLostError extends Error {
  constructor(runId: string) {
    super(`run ${runId} is no longer owned by this attempt`);
    this.name = 'LeaseLostError';
  }
}

export interface RunError {
  name: string;
  message: string;
  attempt: number;
  unrecoverable: boolean;
}

/** Checkpoints to delete under `keepLatest` + `keepBest` (by `metric`) retention. */
export function checkpointsToDelete<T extends { step: number; metrics: unknown }>(
  checkpoints: T[],
  spec: Pick<CheckpointSpec, 'keepLatest' | 'keepBest' | 'metric'>,
): T[] {
  const byStep = [...checkpoints].sort((a, b) => b.step - a.step);
  const keep = new Set(byStep.slice(0, spec.keepLatest));
  const scored = byStep
    .map((c) => ({ c, score: (c.metrics as Record<string, number> | null)?.[spec.metric] }))
    .filter((s): s is { c: T; score: number } => typeof s.score === 'number');
  scored.sort((a, b) =>
    better(spec.metric, a.score, b.score)
      ? -1
      : better(spec.metric, b.score, a.score)
        ? 1
        : b.c.step - a.c.step,
  );
  for (const s of scored.slice(0, spec.keepBest)) keep.add(s.c);
  return byStep.filter((c) => !keep.has(c));
}

/**
 * `artifacts` holds the checkpoints' bytes: whatever removes a Checkpoint row removes its files
 * there too (retention, abandoned attempts, rejected checkpoints).
 */
export function createRunStore(prisma: PrismaClient, artifacts: Pick<ArtifactStore, 'delete'>) {
  type Tx = Prisma.TransactionClient;

  /** Rows written before the artifact store held absolute local paths; those are local files. */
  const deleteFiles = async (location: string): Promise<void> => {
    if (path.isAbsolute(location)) await rm(location, { recursive: true, force: true });
    else await artifacts.delete(location);
  };

  /** Updates the run if this attempt still owns it; throws LeaseLostError otherwise. */
  async function fencedUpdate(lease: Lease, data: Prisma.RunUpdateManyMutationInput) {
    const { count } = await prisma.run.updateMany({
      where: { id: lease.runId, lease: lease.token, status: 'running' },
      data,
    });
    if (count !== 1) throw new LeaseLostError(lease.runId);
  }

  /**
   * Runs `write` in a transaction that holds a share lock on the run row, after checking the
   * lease: a claim by another worker (an UPDATE of that row) waits until this commits, and this
   * fails if the claim came first.
   */
  async function fenced<T>(lease: Lease, write: (tx: Tx) => Promise<T>): Promise<T> {
    return prisma.$transaction(async (tx) => {
      const owned = await tx.$queryRaw<unknown[]>`
        SELECT 1 FROM "Run"
        WHERE id = ${lease.runId}::uuid AND lease = ${lease.token} AND status = 'running'
        FOR SHARE`;
      if (owned.length === 0) throw new LeaseLostError(lease.runId);
      return write(tx);
    });
  }

  return {
    /**
     * Claims a queued (or re-delivered running) run for one attempt of this worker. Null when
     * the run is gone or already finished/cancelled: the job must then do nothing.
     */
    async claim(
      runId: string,
      claimant: { workerId: string; attempt: number; device?: string },
    ): Promise<Lease | null> {
      const token = randomUUID();
      const now = new Date();
      const { count } = await prisma.run.updateMany({
        where: { id: runId, status: { in: ['queued', 'running'] } },
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
      return count === 1 ? { runId, token } : null;
    },

    /** The backend a run's child really loaded, on the run and on the worker's row. */
    async setBackend(lease: Lease, workerId: string, backend: string): Promise<void> {
      await fencedUpdate(lease, { backend });
      await prisma.worker.updateMany({ where: { id: workerId }, data: { backend } });
    },

    /** The data set as the run first saw it (classes, normalisation); undefined before that. */
    async dataInfo(runId: string): Promise<DataInfo | undefined> {
      const run = await prisma.run.findUnique({ where: { id: runId }, select: { dataInfo: true } });
      const parsed = dataInfoSchema.safeParse(run?.dataInfo);
      return parsed.success ? parsed.data : undefined;
    },

    /** Records it once: a later attempt reuses it rather than measuring again. */
    async setDataInfo(lease: Lease, info: DataInfo): Promise<void> {
      await fencedUpdate(lease, { dataInfo: { ...info } });
    },

    async updateProgress(lease: Lease, progress: RunProgress): Promise<void> {
      await fencedUpdate(lease, { progress: { ...progress }, heartbeatAt: new Date() });
    },

    /** Liveness: the owning worker is alive and the run is still its own. */
    async heartbeat(lease: Lease): Promise<void> {
      await fencedUpdate(lease, { heartbeatAt: new Date() });
    },

    /**
     * Inserts points; a point already stored (same run, name, step) is left as it is. The
     * rollup levels follow by trigger, in the same transaction.
     */
    async writeMetrics(lease: Lease, points: MetricPointMessage[]): Promise<number> {
      if (points.length === 0) return 0;
      return fenced(lease, (tx) => insertMetricPoints(tx, lease.runId, points));
    },

    async recordCheckpoint(lease: Lease, c: CheckpointSaved): Promise<void> {
      const data = {
        epoch: c.epoch,
        location: c.location,
        bytes: BigInt(c.bytes),
        sha256: c.sha256,
        metrics: c.metrics,
      };
      await fenced(lease, (tx) =>
        tx.checkpoint.upsert({
          where: { runId_step: { runId: lease.runId, step: c.step } },
          create: { runId: lease.runId, step: c.step, ...data },
          update: data,
        }),
      );
    },

    /** Applies retention: deletes the rows, then the files. Returns the deleted steps. */
    async applyRetention(
      lease: Lease,
      spec: Pick<CheckpointSpec, 'keepLatest' | 'keepBest' | 'metric'>,
    ): Promise<number[]> {
      const doomed = await fenced(lease, async (tx) => {
        const all = await tx.checkpoint.findMany({ where: { runId: lease.runId } });
        const chosen = checkpointsToDelete(all, spec);
        if (chosen.length > 0)
          await tx.checkpoint.deleteMany({ where: { id: { in: chosen.map((c) => c.id) } } });
        return chosen;
      });
      await Promise.all(doomed.map((c) => deleteFiles(c.location)));
      return doomed.map((c) => c.step).sort((a, b) => a - b);
    },

    /** Checkpoint locations of the run in the artifact store, newest first (resume candidates). */
    async checkpointLocations(runId: string): Promise<string[]> {
      const rows = await prisma.checkpoint.findMany({
        where: { runId },
        orderBy: { step: 'desc' },
        select: { location: true },
      });
      return rows.map((r) => r.location);
    },

    /**
     * The run continues from `step`: its metric points from that step on belong to the attempt
     * that died and are about to be written again, so they go (no gaps, no doubles).
     */
    async markResumed(lease: Lease, step: number): Promise<void> {
      // Checkpoints past the resume point belong to the abandoned attempt too (torn, corrupt, or
      // on another host's disk): left in place they would crowd out the new ones in retention.
      const stale = await fenced(lease, async (tx) => {
        const { runId } = lease;
        const found = await tx.checkpoint.findMany({ where: { runId, step: { gt: step } } });
        await tx.metricPoint.deleteMany({ where: { runId, step: { gte: step } } });
        await tx.checkpoint.deleteMany({ where: { runId, step: { gt: step } } });
        await tx.run.update({ where: { id: runId }, data: { resumedFromStep: step } });
        return found;
      });
      await Promise.all(stale.map((c) => deleteFiles(c.location)));
    },

    /** Forgets a checkpoint that cannot be used, row and files. */
    async deleteCheckpoint(lease: Lease, location: string): Promise<void> {
      await fenced(lease, (tx) =>
        tx.checkpoint.deleteMany({ where: { runId: lease.runId, location } }),
      );
      await deleteFiles(location);
    },

    async markSucceeded(lease: Lease, result: TrainResult | EvalResult): Promise<void> {
      // An earlier attempt's error no longer describes the run.
      await fencedUpdate(lease, {
        status: 'succeeded',
        result: { ...result },
        error: Prisma.DbNull,
        lease: null,
        finishedAt: new Date(),
      });
    },

    async markFailed(lease: Lease, error: RunError): Promise<void> {
      await fencedUpdate(lease, {
        status: 'failed',
        error: { ...error },
        lease: null,
        finishedAt: new Date(),
      });
    },

    /** Back to queued: a retry (or a graceful shutdown) will run it again. */
    async markQueued(lease: Lease, error?: RunError): Promise<void> {
      await fencedUpdate(lease, {
        status: 'queued',
        ...(error ? { error: { ...error } } : {}),
        workerId: null,
        lease: null,
      });
    },

    async markCancelled(lease: Lease): Promise<void> {
      await fencedUpdate(lease, { status: 'cancelled', lease: null, finishedAt: new Date() });
    },

    /**
     * Fails a run that no attempt owns any more (BullMQ gave up on its job, or the job is
     * gone): not fenced, but never touches a finished run.
     */
    async failUnowned(runId: string, error: RunError): Promise<boolean> {
      const { count } = await prisma.run.updateMany({
        where: { id: runId, status: { in: ['queued', 'running'] } },
        data: { status: 'failed', error: { ...error }, lease: null, finishedAt: new Date() },
      });
      return count === 1;
    },
  };
}

export type RunStore = ReturnType<typeof createRunStore>;
