/**
 * Metric series: ingest for external runs (idempotent on run, name and step) and queries at any
 * zoom, answered from the rollup levels (src/db/metric-rollups.ts) so a million-point series
 * costs about as much as a thousand-point one.
 */
import { Prisma, type PrismaClient } from '../../db/index.js';
import { insertMetricPoints } from '../../db/metric-points.js';
import { readSeries, seriesNames, type MetricsDb } from '../../db/metric-rollups.js';
import { metricsEvent, type RunEventPublisher } from '../../queue/run-events.js';
import { RunConflictError, RunNotFoundError } from '../../runs/run-errors.js';
import type { IngestMetricsBody, MetricsQuery } from './metrics.schemas.js';

export interface MetricsServiceDeps {
  prisma: PrismaClient;
  events?: RunEventPublisher;
  /** Called with the number of points each ingest stored (Prometheus counter). */
  onIngested?: (inserted: number) => void;
}

export function createMetricsService({ prisma, events, onIngested }: MetricsServiceDeps) {
  async function seriesOf(db: MetricsDb, runId: string, query: MetricsQuery) {
    const names = query.names ?? (await seriesNames(db, runId));
    const series = [];
    for (const name of names)
      series.push({ name, points: await readSeries(db, runId, name, query) });
    return { runId, series };
  }

  /**
   * One snapshot for the whole answer: each series' extent and buckets agree even while points
   * arrive (see readSeries), and the runs of a comparison are read at one moment.
   */
  function inSnapshot<T>(read: (db: MetricsDb) => Promise<T>): Promise<T> {
    return prisma.$transaction(read, {
      isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead,
    });
  }

  async function assertRunsExist(ids: string[]): Promise<void> {
    const found = await prisma.run.findMany({ where: { id: { in: ids } }, select: { id: true } });
    const missing = ids.filter((id) => !found.some((r) => r.id === id));
    if (missing.length > 0) throw new RunNotFoundError(`run ${missing.join(', ')}`);
  }

  return {
    /**
     * Stores the points of an external run that is still running. A point already stored (same
     * name and step) is kept as it was, so a resent batch changes nothing.
     */
    async ingest(runId: string, body: IngestMetricsBody) {
      const run = await prisma.run.findUnique({
        where: { id: runId },
        select: { kind: true, status: true },
      });
      if (!run) throw new RunNotFoundError(`run ${runId}`);
      if (run.kind !== 'external')
        throw new RunConflictError(
          `run ${runId} is a ${run.kind} run; its worker writes its metrics`,
        );
      if (run.status !== 'running')
        throw new RunConflictError(`run ${runId} is ${run.status}; it takes no more points`);
      const now = Date.now();
      const points = body.points.map((p) => ({
        name: p.name,
        step: p.step,
        value: p.value,
        time: p.time === undefined ? now : Date.parse(p.time),
      }));
      const inserted = await insertMetricPoints(prisma, runId, points);
      onIngested?.(inserted);
      if (inserted > 0) void events?.publish(metricsEvent(runId, points));
      return { received: points.length, inserted };
    },

    async runSeries(runId: string, query: MetricsQuery) {
      await assertRunsExist([runId]);
      return inSnapshot((db) => seriesOf(db, runId, query));
    },

    /** The same series of several runs (the compare view), in the order asked. */
    async compare(runIds: string[], query: MetricsQuery) {
      const unique = [...new Set(runIds)];
      await assertRunsExist(unique);
      return {
        runs: await inSnapshot(async (db) => {
          const runs = [];
          for (const id of unique) runs.push(await seriesOf(db, id, query));
          return runs;
        }),
      };
    },
  };
}

export type MetricsService = ReturnType<typeof createMetricsService>;
