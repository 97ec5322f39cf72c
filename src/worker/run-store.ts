/**
 * Everything the worker writes about a run, in Postgres. Writes are idempotent (metric points
 * unique on run+name+step, checkpoints on run+step) because BullMQ delivers at least once.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import { Prisma, type PrismaClient } from '../db/index.js';
import { metricIsBetter as better, type CheckpointSpec, type TrainResult } from '../jobs.js';
import type { CheckpointSaved, MetricPointMessage } from './ipc.js';

export interface RunProgress {
  step: number;
  totalSteps: number;
  epoch: number;
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
  /** Rows written before the artifact store held absolute local paths; those are local files. */
  const deleteFiles = async (location: string): Promise<void> => {
    if (path.isAbsolute(location)) await rm(location, { recursive: true, force: true });
    else await artifacts.delete(location);
  };
  return {
    /**
     * Claims a queued (or re-delivered running) run for this worker. False when the run is gone
     * or already finished/cancelled: the job must then do nothing.
     */
    async markRunning(runId: string, workerId: string, attempt: number): Promise<boolean> {
      const { count } = await prisma.run.updateMany({
        where: { id: runId, status: { in: ['queued', 'running'] } },
        data: {
          status: 'running',
          workerId,
          attempts: attempt,
          startedAt: new Date(),
          finishedAt: null,
        },
      });
      return count === 1;
    },

    /** The backend a run's child really loaded, on the run and on the worker's row. */
    async setBackend(runId: string, workerId: string, backend: string): Promise<void> {
      await prisma.run.update({ where: { id: runId }, data: { backend } });
      await prisma.worker.updateMany({ where: { id: workerId }, data: { backend } });
    },

    async updateProgress(runId: string, progress: RunProgress): Promise<void> {
      await prisma.run.update({ where: { id: runId }, data: { progress: { ...progress } } });
    },

    /** Inserts points; a point already stored (same run, name, step) is left as it is. */
    async writeMetrics(runId: string, points: MetricPointMessage[]): Promise<number> {
      if (points.length === 0) return 0;
      const { count } = await prisma.metricPoint.createMany({
        data: points.map((p) => ({
          runId,
          name: p.name,
          step: p.step,
          value: p.value,
          wallTime: new Date(p.time),
        })),
        skipDuplicates: true,
      });
      return count;
    },

    async recordCheckpoint(runId: string, c: CheckpointSaved): Promise<void> {
      const data = {
        epoch: c.epoch,
        location: c.location,
        bytes: BigInt(c.bytes),
        sha256: c.sha256,
        metrics: c.metrics,
      };
      await prisma.checkpoint.upsert({
        where: { runId_step: { runId, step: c.step } },
        create: { runId, step: c.step, ...data },
        update: data,
      });
    },

    /** Applies retention: deletes the rows, then the files. Returns the deleted steps. */
    async applyRetention(
      runId: string,
      spec: Pick<CheckpointSpec, 'keepLatest' | 'keepBest' | 'metric'>,
    ): Promise<number[]> {
      const all = await prisma.checkpoint.findMany({ where: { runId } });
      const doomed: typeof all = checkpointsToDelete(all, spec);
      if (doomed.length === 0) return [];
      await prisma.checkpoint.deleteMany({ where: { id: { in: doomed.map((c) => c.id) } } });
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
    async markResumed(runId: string, step: number): Promise<void> {
      // Checkpoints past the resume point belong to the abandoned attempt too (torn, corrupt, or
      // on another host's disk): left in place they would crowd out the new ones in retention.
      const stale = await prisma.checkpoint.findMany({ where: { runId, step: { gt: step } } });
      await prisma.$transaction([
        prisma.metricPoint.deleteMany({ where: { runId, step: { gte: step } } }),
        prisma.checkpoint.deleteMany({ where: { runId, step: { gt: step } } }),
        prisma.run.update({ where: { id: runId }, data: { resumedFromStep: step } }),
      ]);
      await Promise.all(stale.map((c) => deleteFiles(c.location)));
    },

    /** Forgets a checkpoint that cannot be used, row and files. */
    async deleteCheckpoint(runId: string, location: string): Promise<void> {
      await prisma.checkpoint.deleteMany({ where: { runId, location } });
      await deleteFiles(location);
    },

    async markSucceeded(runId: string, result: TrainResult): Promise<void> {
      await prisma.run.updateMany({
        where: { id: runId, status: 'running' },
        // An earlier attempt's error no longer describes the run.
        data: {
          status: 'succeeded',
          result: { ...result },
          error: Prisma.DbNull,
          finishedAt: new Date(),
        },
      });
    },

    async markFailed(runId: string, error: RunError): Promise<void> {
      await prisma.run.updateMany({
        where: { id: runId, status: { in: ['queued', 'running'] } },
        data: { status: 'failed', error: { ...error }, finishedAt: new Date() },
      });
    },

    /** Back to queued: a retry (or a graceful shutdown) will run it again. */
    async markQueued(runId: string, error?: RunError): Promise<void> {
      await prisma.run.updateMany({
        where: { id: runId, status: 'running' },
        data: { status: 'queued', ...(error ? { error: { ...error } } : {}), workerId: null },
      });
    },

    async markCancelled(runId: string): Promise<void> {
      await prisma.run.updateMany({
        where: { id: runId, status: { in: ['queued', 'running'] } },
        data: { status: 'cancelled', finishedAt: new Date() },
      });
    },
  };
}

export type RunStore = ReturnType<typeof createRunStore>;
