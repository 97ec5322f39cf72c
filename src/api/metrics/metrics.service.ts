/**
 * Metric series: ingest for external runs (idempotent on run, name and step) and queries at any
 * zoom, answered from the rollup levels (src/db/metric-rollups.ts) so a million-point series
 * costs about as much as a thousand-point one.
 */
import { Prisma, type PrismaClient } from '../../db/index.js';
import { readSeries, type MetricsDb } from '../../db/metric-rollups.js';
import { insertCappedMetricPoints, seriesNames } from '../../db/metric-series.js';
import { metricsEvent, type RunEventPublisher } from '../../queue/run-events.js';
import { RunConflictError, RunNotFoundError, UnusableInputError } from '../../runs/run-errors.js';
import type { IngestMetricsBody, MetricsQuery } from './metrics.schemas.js';

export interface MetricsServiceDeps {
  prisma: PrismaClient;
  events?: RunEventPublisher;
  /** Called with the number of points each ingest stored (Prometheus counter). */
  onIngested?: (inserted: number) => void;
  limits: {
    /** METRICS_MAX_SERIES_PER_RUN: series (names) one run may have. */
    maxSeriesPerRun: number;
    /** METRICS_MAX_POINTS_PER_READ: series × maxPoints one read may ask for. */
    maxPointsPerRead: number;
  };
}

export function createMetricsService({ prisma, events, onIngested, limits }: MetricsServiceDeps) {
  /** Refuses a read of `series` series of `maxPoints` each past the read budget. */
  function checkReadSize(series: number, maxPoints: number): void {
    if (series * maxPoints <= limits.maxPointsPerRead) return;
    const message =
      `${series} series × maxPoints ${maxPoints} is more than the ${limits.maxPointsPerRead} ` +
      'points one read may ask for (METRICS_MAX_POINTS_PER_READ); ask for fewer names, runs or points';
    throw new UnusableInputError('query.maxPoints', message, {
      detail: `query.maxPoints: ${message}`,
    });
  }

  /** The run's series asked for (all of them, up to the cap, when no names are given). */
  async function namesOf(db: MetricsDb, runId: string, query: MetricsQuery): Promise<string[]> {
    return query.names ?? seriesNames(db, runId, limits.maxSeriesPerRun);
  }

  async function seriesOf(db: MetricsDb, runId: string, names: string[], query: MetricsQuery) {
    return { runId, series: await readSeries(db, runId, names, query) };
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
      const inserted = await prisma.$transaction((tx) =>
        insertCappedMetricPoints(tx, runId, points, limits.maxSeriesPerRun),
      );
      onIngested?.(inserted);
      if (inserted > 0) void events?.publish(metricsEvent(runId, points));
      return { received: points.length, inserted };
    },

    async runSeries(runId: string, query: MetricsQuery) {
      await assertRunsExist([runId]);
      if (query.names) checkReadSize(query.names.length, query.maxPoints);
      return inSnapshot(async (db) => {
        const names = await namesOf(db, runId, query);
        checkReadSize(names.length, query.maxPoints);
        return seriesOf(db, runId, names, query);
      });
    },

    /**
     * The same series of several runs (the compare view), in the order asked. The read budget
     * counts the series of every run: all their names are read before any point.
     */
    async compare(runIds: string[], query: MetricsQuery) {
      const unique = [...new Set(runIds)];
      await assertRunsExist(unique);
      if (query.names) checkReadSize(unique.length * query.names.length, query.maxPoints);
      return {
        runs: await inSnapshot(async (db) => {
          const names = [];
          for (const id of unique) names.push(await namesOf(db, id, query));
          checkReadSize(
            names.reduce((sum, n) => sum + n.length, 0),
            query.maxPoints,
          );
          const runs = [];
          for (const [i, id] of unique.entries())
            runs.push(await seriesOf(db, id, names[i]!, query));
          return runs;
        }),
      };
    },
  };
}

export type MetricsService = ReturnType<typeof createMetricsService>;
