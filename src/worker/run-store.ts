/**
 * Everything the worker writes about a run in Postgres besides its status (src/runs/ owns
 * that). Writes are idempotent (metric points unique on run+name+step, checkpoints on run+step)
 * because BullMQ delivers at least once, and fenced by the attempt's lease (src/runs/lease.ts),
 * so a worker that lost its job to another (a lost lock, a network partition) can no longer
 * change the run.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { PrismaClient } from '../db/index.js';
import { insertCappedMetricPoints } from '../db/metric-series.js';
import { dataInfoSchema, type DataInfo } from '../spec/data-info.js';
import type { CheckpointSpec } from '../spec/checkpoint-spec.js';
import { checkpointsToDelete } from '../checkpoints/checkpoint-retention.js';
import { fencedTransaction, fencedUpdate as fencedRunUpdate, type Lease } from '../runs/lease.js';
import type { CheckpointSaved, MetricPointMessage } from './ipc.js';

export interface RunProgress {
  step: number;
  totalSteps: number;
  epoch: number;
}

/** Metric series a run may have when the worker is not told (METRICS_MAX_SERIES_PER_RUN). */
const DEFAULT_MAX_SERIES = 1000;

/**
 * The worker's store of a run's rows. `artifacts` holds the checkpoints' bytes: whatever removes
 * a Checkpoint row removes its files there too (retention, abandoned attempts, rejected
 * checkpoints). `maxSeriesPerRun` caps the run's metric series as the API's ingest does.
 */
export function createRunStore(
  prisma: PrismaClient,
  artifacts: Pick<ArtifactStore, 'delete'>,
  { maxSeriesPerRun = DEFAULT_MAX_SERIES }: { maxSeriesPerRun?: number } = {},
) {
  return {
    ...createRunRecordWrites(prisma, maxSeriesPerRun),
    ...createCheckpointRecords(prisma, artifacts),
  };
}

/** What the worker learns about a run while it trains: backend, data, progress, metrics. */
function createRunRecordWrites(prisma: PrismaClient, maxSeriesPerRun: number) {
  const fencedUpdate = (lease: Lease, data: Parameters<typeof fencedRunUpdate>[2]) =>
    fencedRunUpdate(prisma, lease, data);
  const fenced = <T>(lease: Lease, write: Parameters<typeof fencedTransaction<T>>[2]) =>
    fencedTransaction(prisma, lease, write);

  return {
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
     * rollup levels follow by trigger, in the same transaction. Points that would give the run
     * more than `maxSeriesPerRun` series are refused whole (SeriesLimitError).
     */
    async writeMetrics(lease: Lease, points: MetricPointMessage[]): Promise<number> {
      if (points.length === 0) return 0;
      return fenced(lease, (tx) =>
        insertCappedMetricPoints(tx, lease.runId, points, maxSeriesPerRun),
      );
    },
  };
}

/** A run's Checkpoint rows and their files: recording, retention, resume and rejection. */
function createCheckpointRecords(prisma: PrismaClient, artifacts: Pick<ArtifactStore, 'delete'>) {
  const deleteFiles = (location: string) => deleteCheckpointFiles(artifacts, location);
  const fenced = <T>(lease: Lease, write: Parameters<typeof fencedTransaction<T>>[2]) =>
    fencedTransaction(prisma, lease, write);

  return {
    async recordCheckpoint(lease: Lease, c: Omit<CheckpointSaved, 'files'>): Promise<void> {
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
  };
}

/**
 * Deletes a checkpoint's files: from the artifact store, or from local disk for rows written
 * before the artifact store held absolute local paths.
 */
async function deleteCheckpointFiles(
  artifacts: Pick<ArtifactStore, 'delete'>,
  location: string,
): Promise<void> {
  if (path.isAbsolute(location)) await rm(location, { recursive: true, force: true });
  else await artifacts.delete(location);
}

export type RunStore = ReturnType<typeof createRunStore>;
