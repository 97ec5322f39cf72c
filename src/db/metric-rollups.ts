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
  name: string;
  min: number;
  max: number;
  last: number;
  lastStep: number;
  count: number;
}

/** One series of an answer. */
export interface Series {
  name: string;
  points: SeriesPoint[];
}

/** How one series too long for exact points is bucketed: bucket size 2^k over [from, to]. */
interface BucketPlan {
  name: string;
  k: number;
  from: number;
  to: number;
  /** Stored level the whole buckets come from; undefined: every bucket from raw points. */
  level?: number;
  /** Whole buckets, in buckets of 2^k: [firstFull, lastFull]. */
  firstFull: number;
  lastFull: number;
}

/**
 * The series `names` of run `runId` over `range`, in the order of `names`, in a fixed number of
 * statements however many names (each takes the names as an array): the exact points of every
 * series, then, for the series holding more than `maxPoints` points in the range, their extents,
 * their whole buckets from the levels and their edge buckets from raw points. Every statement
 * reads at most about `maxPoints` rows per series.
 *
 * Run it inside a REPEATABLE READ transaction when points may be arriving: the extent read
 * decides which buckets count as whole, and a point appended between that read and the bucket
 * read would otherwise land in the last bucket beyond the range asked.
 */
export async function readSeries(
  prisma: MetricsDb,
  runId: string,
  names: readonly string[],
  range: SeriesRange,
): Promise<Series[]> {
  const unique = [...new Set(names)];
  if (unique.length === 0) return [];
  const lo = range.fromStep ?? 0;
  const hi = range.toStep ?? MAX_STEP;
  // At most maxPoints + 1 rows per series along the key: enough to know whether they fit.
  const exactRows = await prisma.$queryRaw<Array<{ name: string; step: number; value: number }>>`
    SELECT n.name, p.step, p.value FROM unnest(${unique}::text[]) AS n(name)
    CROSS JOIN LATERAL (
      SELECT step, value FROM "MetricPoint"
      WHERE "runId" = ${runId}::uuid AND name = n.name AND step BETWEEN ${lo} AND ${hi}
      ORDER BY step LIMIT ${range.maxPoints + 1}) p
    ORDER BY n.name, p.step`;
  const exact = groupByName(exactRows, (r) => ({ step: r.step, value: r.value }));
  const long = unique.filter((n) => (exact.get(n)?.length ?? 0) > range.maxPoints);
  const buckets = groupByName(await readBuckets(prisma, runId, long, range), (r) => r);
  return names.map((name) => ({
    name,
    points: buckets.has(name)
      ? (buckets.get(name) ?? [])
          .sort((a, b) => a.lastStep - b.lastStep)
          .map((r) => ({ step: r.lastStep, value: r.last, min: r.min, max: r.max, count: r.count }))
      : (exact.get(name) ?? []),
  }));
}

function groupByName<R extends { name: string }, T>(rows: R[], map: (row: R) => T) {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const group = groups.get(row.name);
    if (group) group.push(map(row));
    else groups.set(row.name, [map(row)]);
  }
  return groups;
}

/** Buckets of the series `names`, each holding more than maxPoints points in the range. */
async function readBuckets(
  prisma: MetricsDb,
  runId: string,
  names: string[],
  range: SeriesRange,
): Promise<BucketRow[]> {
  if (names.length === 0) return [];
  // Min/max over the (runId, name, step) key: two index probes per series, not a scan.
  const extents = await prisma.$queryRaw<Array<{ name: string; lo: number; hi: number }>>`
    SELECT n.name,
      (SELECT min(step) FROM "MetricPoint" WHERE "runId" = ${runId}::uuid AND name = n.name) AS lo,
      (SELECT max(step) FROM "MetricPoint" WHERE "runId" = ${runId}::uuid AND name = n.name) AS hi
    FROM unnest(${names}::text[]) AS n(name)`;
  const plans = extents.map((e) => bucketPlan(e, range));
  const stored = plans.filter((p) => p.level !== undefined && p.firstFull <= p.lastFull);
  const raw = plans.flatMap((p): Array<[BucketPlan, number, number]> => {
    if (!stored.includes(p)) return [[p, p.from, p.to]];
    const size = 2 ** p.k;
    return [
      [p, p.from, p.firstFull * size - 1],
      [p, (p.lastFull + 1) * size, p.to],
    ];
  });
  const [inside, edges] = await Promise.all([
    levelBuckets(prisma, runId, stored),
    rawBuckets(
      prisma,
      runId,
      raw.filter(([, a, b]) => a <= b),
    ),
  ]);
  return [...inside, ...edges];
}

/**
 * A bucket counts as whole when the range holds all of its points: wholly inside the range, or
 * cut only by the end of the series itself (no points lie beyond it). So the whole series (the
 * chart's usual question) is read from the levels alone, however few buckets are asked.
 */
function bucketPlan(
  extent: { name: string; lo: number; hi: number },
  range: SeriesRange,
): BucketPlan {
  const from = Math.max(range.fromStep ?? 0, extent.lo);
  const to = Math.min(range.toStep ?? MAX_STEP, extent.hi);
  const k = bucketExponent(from, to, range.maxPoints);
  const size = 2 ** k;
  const level = [...ROLLUP_LEVELS].reverse().find((l) => l <= k);
  return {
    name: extent.name,
    k,
    from,
    to,
    ...(level === undefined ? {} : { level }),
    firstFull: from === extent.lo ? Math.floor(from / size) : Math.ceil(from / size),
    lastFull: to === extent.hi ? Math.floor(to / size) : Math.floor((to + 1) / size) - 1,
  };
}

/** The whole buckets of each plan, merged from its stored level (up to 4 rows a bucket). */
async function levelBuckets(
  prisma: MetricsDb,
  runId: string,
  plans: BucketPlan[],
): Promise<BucketRow[]> {
  if (plans.length === 0) return [];
  const shifts = plans.map((p) => p.k - p.level!);
  return prisma.$queryRaw<BucketRow[]>`
    SELECT q.name, min(r."min") AS "min", max(r."max") AS "max",
           (array_agg(r."last" ORDER BY r."lastStep" DESC))[1] AS "last",
           max(r."lastStep") AS "lastStep", sum(r."count")::int AS "count"
    FROM unnest(${plans.map((p) => p.name)}::text[], ${plans.map((p) => p.level!)}::int[],
                ${shifts}::int[], ${plans.map((p, i) => p.firstFull * 2 ** shifts[i]!)}::int[],
                ${plans.map((p, i) => (p.lastFull + 1) * 2 ** shifts[i]!)}::bigint[])
      AS q(name, level, shift, first, stop)
    JOIN "MetricRollup" r ON r."runId" = ${runId}::uuid AND r.name = q.name
      AND r.level = q.level AND r.bucket >= q.first AND r.bucket < q.stop
    GROUP BY q.name, r.bucket >> q.shift`;
}

/** Buckets of 2^k steps aggregated from raw points in each [a, b] (empty ones skipped). */
async function rawBuckets(
  prisma: MetricsDb,
  runId: string,
  ranges: Array<[BucketPlan, number, number]>,
): Promise<BucketRow[]> {
  if (ranges.length === 0) return [];
  return prisma.$queryRaw<BucketRow[]>`
    SELECT q.name, min(p.value) AS "min", max(p.value) AS "max",
           (array_agg(p.value ORDER BY p.step DESC))[1] AS "last",
           max(p.step) AS "lastStep", count(*)::int AS "count"
    FROM unnest(${ranges.map(([p]) => p.name)}::text[], ${ranges.map(([p]) => p.k)}::int[],
                ${ranges.map(([, a]) => a)}::int[], ${ranges.map(([, , b]) => b)}::int[])
      AS q(name, k, a, b)
    JOIN "MetricPoint" p ON p."runId" = ${runId}::uuid AND p.name = q.name
      AND p.step BETWEEN q.a AND q.b
    GROUP BY q.name, q.a, p.step >> q.k`;
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
