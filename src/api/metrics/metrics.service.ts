/**
 * Metric series: ingest for external runs (idempotent on run, name and step) and queries at any
 * zoom, answered from the rollup levels (src/db/metric-rollups.ts) so a million-point series
 * costs about as much as a thousand-point one. A run has at most METRICS_MAX_SERIES_PER_RUN
 * series and a read asks for at most METRICS_MAX_POINTS_PER_READ points, so every read is
 * bounded.
 */
import { Prisma, type PrismaClient } from '../../db/index.js';
import { readSeries, type MetricsDb } from '../../db/metric-rollups.js';
import { insertCappedMetricPointsAlone, seriesNames } from '../../db/metric-series.js';
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

/** Refuses a read of `series` series of `maxPoints` each past the read budget. */
function checkReadSize(series: number, maxPoints: number, budget: number): void {
  if (series * maxPoints <= budget) return;
  const message =
    `${series} series × maxPoints ${maxPoints} is more than the ${budget} points one read ` +
    'may ask for (METRICS_MAX_POINTS_PER_READ); ask for fewer names, runs or points';
  throw new UnusableInputError('query.maxPoints', message, {
    detail: `query.maxPoints: ${message}`,
  });
}

async function assertRunsExist(prisma: PrismaClient, ids: string[]): Promise<void> {
  const found = await prisma.run.findMany({ where: { id: { in: ids } }, select: { id: true } });
  const missing = ids.filter((id) => !found.some((r) => r.id === id));
  if (missing.length > 0) throw new RunNotFoundError(`run ${missing.join(', ')}`);
}

/** Only a running external run takes points from the API (a worker writes the others'). */
async function assertTakesPoints(prisma: PrismaClient, runId: string): Promise<void> {
  const run = await prisma.run.findUnique({
    where: { id: runId },
    select: { kind: true, status: true },
  });
  if (!run) throw new RunNotFoundError(`run ${runId}`);
  if (run.kind !== 'external')
    throw new RunConflictError(`run ${runId} is a ${run.kind} run; its worker writes its metrics`);
  if (run.status !== 'running')
    throw new RunConflictError(`run ${runId} is ${run.status}; it takes no more points`);
}

export function createMetricsService({ prisma, events, onIngested, limits }: MetricsServiceDeps) {
  const checkRead = (series: number, maxPoints: number) =>
    checkReadSize(series, maxPoints, limits.maxPointsPerRead);

  /**
   * One snapshot for the whole answer: each series' extent and buckets agree even while points
   * arrive (see readSeries), and the runs of a comparison are read at one moment.
   */
  function inSnapshot<T>(read: (db: MetricsDb) => Promise<T>): Promise<T> {
    return prisma.$transaction(read, {
      isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead,
    });
  }

  /**
   * The series asked of each run, in the order asked. The read budget counts the series of
   * every run (all of a run's, up to the cap, when no names are given): all their names are
   * known before any point is read.
   */
  async function readRuns(runIds: string[], query: MetricsQuery) {
    const unique = [...new Set(runIds)];
    await assertRunsExist(prisma, unique);
    if (query.names) checkRead(unique.length * query.names.length, query.maxPoints);
    return inSnapshot(async (db) => {
      const names: string[][] = [];
      for (const id of unique)
        names.push(query.names ?? (await seriesNames(db, id, limits.maxSeriesPerRun)));
      checkRead(
        names.reduce((sum, n) => sum + n.length, 0),
        query.maxPoints,
      );
      const runs = [];
      for (const [i, runId] of unique.entries())
        runs.push({ runId, series: await readSeries(db, runId, names[i]!, query) });
      return runs;
    });
  }

  return {
    /**
     * Stores the points of an external run that is still running. A point already stored (same
     * name and step) is kept as it was, so a resent batch changes nothing; points that would
     * give the run more series than its cap are refused, all of them (SeriesLimitError).
     */
    async ingest(runId: string, body: IngestMetricsBody) {
      await assertTakesPoints(prisma, runId);
      const now = Date.now();
      const points = body.points.map((p) => ({
        name: p.name,
        step: p.step,
        value: p.value,
        time: p.time === undefined ? now : Date.parse(p.time),
      }));
      const inserted = await insertCappedMetricPointsAlone(
        prisma,
        runId,
        points,
        limits.maxSeriesPerRun,
      );
      onIngested?.(inserted);
      if (inserted > 0) void events?.publish(metricsEvent(runId, points));
      return { received: points.length, inserted };
    },

    async runSeries(runId: string, query: MetricsQuery) {
      return (await readRuns([runId], query))[0]!;
    },

    /** The same series of several runs (the compare view), in the order asked. */
    async compare(runIds: string[], query: MetricsQuery) {
      return { runs: await readRuns(runIds, query) };
    },
  };
}

export type MetricsService = ReturnType<typeof createMetricsService>;
