/**
 * Reading a metric series at any zoom from the pre-aggregated MetricRollup levels (kept by
 * triggers on MetricPoint; see prisma/migrations/*_metric_rollups).
 *
 * A query for [from, to] with at most `maxPoints` answers exact stored points when the range
 * holds no more than that; otherwise it picks the smallest power-of-two bucket size 2^k that
 * gives at most `maxPoints` buckets, reads the buckets that lie wholly inside the range from the
 * stored level just below k (merging 2^(k-level) of them per bucket), and aggregates the two
 * partial buckets at the edges from raw points, so the envelope is exact for the range asked.
 * A bucket cut only by the start or end of the series is not partial: it holds no other points.
 */
import type { Prisma, PrismaClient } from './index.js';

/** A client or a transaction: readSeries must run in one snapshot (see readSeries). */
export type MetricsDb = PrismaClient | Prisma.TransactionClient;

/** Stored levels: buckets of 2^level steps. Must match the migration's triggers. */
export const ROLLUP_LEVELS = [4, 6, 8, 10, 12, 14, 16, 18, 20] as const;

/** Steps are non-negative 32-bit integers (the column is `int`). */
export const MAX_STEP = 2 ** 31 - 1;

export interface SeriesPoint {
  step: number;
  value: number;
  /** Present on buckets: the extremes of the bucket and its number of points. */
  min?: number;
  max?: number;
  count?: number;
}

export interface SeriesRange {
  fromStep?: number;
  toStep?: number;
  maxPoints: number;
}

/** Smallest k with at most `maxPoints` buckets of 2^k steps over [from, to]. */
export function bucketExponent(from: number, to: number, maxPoints: number): number {
  let k = 0;
  while (Math.floor(to / 2 ** k) - Math.floor(from / 2 ** k) + 1 > maxPoints) k++;
  return k;
}

interface BucketRow {
  min: number;
  max: number;
  last: number;
  lastStep: number;
  count: number;
}

/**
 * Run it inside a REPEATABLE READ transaction when points may be arriving: the extent read first
 * decides which buckets count as whole, and a point appended between that read and the bucket
 * read would otherwise land in the last bucket beyond the range asked.
 */
export async function readSeries(
  prisma: MetricsDb,
  runId: string,
  name: string,
  range: SeriesRange,
): Promise<SeriesPoint[]> {
  // Min/max over the (runId, name, step) index: two index probes, not a scan.
  const [extent] = await prisma.$queryRaw<Array<{ lo: number | null; hi: number | null }>>`
    SELECT min(step) AS lo, max(step) AS hi FROM "MetricPoint"
    WHERE "runId" = ${runId}::uuid AND name = ${name}`;
  if (!extent || extent.lo === null || extent.hi === null) return [];
  const from = Math.max(range.fromStep ?? 0, extent.lo);
  const to = Math.min(range.toStep ?? MAX_STEP, extent.hi);
  if (from > to) return [];

  // At most maxPoints + 1 rows along the index: enough to know whether the exact points fit.
  const exact = await prisma.$queryRaw<Array<{ step: number; value: number }>>`
    SELECT step, value FROM "MetricPoint"
    WHERE "runId" = ${runId}::uuid AND name = ${name} AND step BETWEEN ${from} AND ${to}
    ORDER BY step LIMIT ${range.maxPoints + 1}`;
  if (exact.length <= range.maxPoints) return exact;

  const k = bucketExponent(from, to, range.maxPoints);
  const size = 2 ** k;
  // A bucket counts as inside when the range holds all of its points: wholly inside the range,
  // or cut only by the end of the series itself (no points lie beyond it). So the whole series
  // (the chart's usual question) is read from the levels alone, however few buckets are asked.
  const firstFull = from === extent.lo ? Math.floor(from / size) : Math.ceil(from / size);
  const lastFull = to === extent.hi ? Math.floor(to / size) : Math.floor((to + 1) / size) - 1;
  const level = [...ROLLUP_LEVELS].reverse().find((l) => l <= k);

  let rows: BucketRow[];
  if (level === undefined || firstFull > lastFull) {
    rows = await rawBuckets(prisma, runId, name, k, [[from, to]]);
  } else {
    const shift = k - level;
    const [inside, edges] = await Promise.all([
      prisma.$queryRaw<BucketRow[]>`
        SELECT min("min") AS "min", max("max") AS "max",
               (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last",
               max("lastStep") AS "lastStep", sum("count")::int AS "count"
        FROM "MetricRollup"
        WHERE "runId" = ${runId}::uuid AND name = ${name} AND level = ${level}
          AND bucket >= ${firstFull * 2 ** shift} AND bucket < ${(lastFull + 1) * 2 ** shift}
        GROUP BY bucket >> ${shift}`,
      rawBuckets(prisma, runId, name, k, [
        [from, firstFull * size - 1],
        [(lastFull + 1) * size, to],
      ]),
    ]);
    rows = [...inside, ...edges];
  }
  return rows
    .sort((a, b) => a.lastStep - b.lastStep)
    .map((r) => ({ step: r.lastStep, value: r.last, min: r.min, max: r.max, count: r.count }));
}

/** Buckets of 2^k steps aggregated from raw points in the given step ranges (empty ones skipped). */
async function rawBuckets(
  prisma: MetricsDb,
  runId: string,
  name: string,
  k: number,
  ranges: Array<[number, number]>,
): Promise<BucketRow[]> {
  const wanted = ranges.filter(([a, b]) => a <= b);
  const results = await Promise.all(
    wanted.map(
      ([a, b]) => prisma.$queryRaw<BucketRow[]>`
        SELECT min(value) AS "min", max(value) AS "max",
               (array_agg(value ORDER BY step DESC))[1] AS "last",
               max(step) AS "lastStep", count(*)::int AS "count"
        FROM "MetricPoint"
        WHERE "runId" = ${runId}::uuid AND name = ${name} AND step BETWEEN ${a} AND ${b}
        GROUP BY step >> ${k}`,
    ),
  );
  return results.flat();
}

/**
 * The newest point of each of the run's series, from the coarsest rollup level: its newest
 * bucket's last value is the series' newest point (a few rows, not a scan of the points).
 */
export async function latestPoints(
  prisma: PrismaClient,
  runId: string,
): Promise<Array<{ name: string; step: number; value: number }>> {
  const top = ROLLUP_LEVELS[ROLLUP_LEVELS.length - 1];
  return prisma.$queryRaw`
    SELECT DISTINCT ON (name) name, "lastStep" AS step, "last" AS value FROM "MetricRollup"
    WHERE "runId" = ${runId}::uuid AND level = ${top}
    ORDER BY name, bucket DESC`;
}

/** The highest value of series `name` of each of `runIds` that has it, from the coarsest level. */
export async function seriesMaxima(
  prisma: PrismaClient,
  runIds: string[],
  name: string,
): Promise<Map<string, number>> {
  if (runIds.length === 0) return new Map();
  const top = ROLLUP_LEVELS[ROLLUP_LEVELS.length - 1];
  const rows = await prisma.$queryRaw<Array<{ runId: string; max: number }>>`
    SELECT "runId"::text AS "runId", max("max") AS "max" FROM "MetricRollup"
    WHERE "runId" = ANY(${runIds}::uuid[]) AND name = ${name} AND level = ${top}
    GROUP BY "runId"`;
  return new Map(rows.map((r) => [r.runId, r.max]));
}

/** Names of the run's series, from the coarsest rollup level (a few rows, not a scan). */
export async function seriesNames(prisma: MetricsDb, runId: string): Promise<string[]> {
  const top = ROLLUP_LEVELS[ROLLUP_LEVELS.length - 1];
  const rows = await prisma.$queryRaw<Array<{ name: string }>>`
    SELECT DISTINCT name FROM "MetricRollup"
    WHERE "runId" = ${runId}::uuid AND level = ${top} ORDER BY name`;
  return rows.map((r) => r.name);
}
