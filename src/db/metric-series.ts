/**
 * The series (distinct metric names) of a run, and the cap on how many it may have. Each read
 * answers per series, so a run with unbounded series would make every read of it unbounded: a
 * run with 10,000 series made its metrics page time out for ever. Writers insert through
 * `insertCappedMetricPoints`, which refuses a batch that would pass the cap, whole.
 */
import type { Prisma, PrismaClient } from './index.js';
import { insertMetricPoints, type MetricPointInput } from './metric-points.js';

/** A batch of points would give the run more series than the cap allows. */
export class SeriesLimitError extends Error {
  override name = 'SeriesLimitError';
  constructor(
    readonly runId: string,
    readonly maxSeries: number,
    /** Series the run has, and series the batch would add. */
    readonly existing: number,
    readonly added: number,
  ) {
    super(
      `run ${runId} may have at most ${maxSeries} metric series (METRICS_MAX_SERIES_PER_RUN); ` +
        `it has ${existing} and these points would add ${added} more`,
    );
  }
}

/**
 * Names of the run's series in name order, at most `limit` of them, in one statement: a loose
 * index scan along the (runId, name, step) key, one probe per name, never a scan of the points.
 */
export async function seriesNames(
  db: PrismaClient | Prisma.TransactionClient,
  runId: string,
  limit: number,
): Promise<string[]> {
  const rows = await db.$queryRaw<Array<{ name: string }>>`
    WITH RECURSIVE names(name, n) AS (
      (SELECT name, 1 FROM "MetricPoint" WHERE "runId" = ${runId}::uuid ORDER BY name LIMIT 1)
      UNION ALL
      SELECT (SELECT p.name FROM "MetricPoint" p
              WHERE p."runId" = ${runId}::uuid AND p.name > names.name ORDER BY p.name LIMIT 1),
             n + 1
      FROM names WHERE names.name IS NOT NULL AND n < ${limit}
    )
    SELECT name FROM names WHERE name IS NOT NULL`;
  return rows.map((r) => r.name);
}

/** Which of `names` the run has points of (one probe along the key per name). */
async function knownNames(
  db: PrismaClient | Prisma.TransactionClient,
  runId: string,
  names: string[],
): Promise<Set<string>> {
  const rows = await db.$queryRaw<Array<{ name: string }>>`
    SELECT n.name FROM unnest(${names}::text[]) AS n(name)
    WHERE EXISTS (SELECT 1 FROM "MetricPoint" p WHERE p."runId" = ${runId}::uuid AND p.name = n.name)`;
  return new Set(rows.map((r) => r.name));
}

/**
 * Inserts `points` (see insertMetricPoints) unless they would give the run more than `maxSeries`
 * series; then throws SeriesLimitError and inserts none. Runs inside the caller's transaction
 * `tx`: a batch that adds series takes a per-run advisory lock in it, so two such batches cannot
 * both pass the cap. Points of series the run has already go straight in.
 */
export async function insertCappedMetricPoints(
  tx: Prisma.TransactionClient,
  runId: string,
  points: readonly MetricPointInput[],
  maxSeries: number,
): Promise<number> {
  const names = [...new Set(points.map((p) => p.name))];
  if (names.length === 0) return 0;
  if ((await knownNames(tx, runId, names)).size === names.length)
    return insertMetricPoints(tx, runId, points);
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`series:${runId}`}, 0))`;
  const added = names.length - (await knownNames(tx, runId, names)).size;
  const existing = (await seriesNames(tx, runId, maxSeries + 1)).length;
  if (existing + added > maxSeries) throw new SeriesLimitError(runId, maxSeries, existing, added);
  return insertMetricPoints(tx, runId, points);
}

/**
 * The same outside a transaction (the API's ingest): points of known series go straight in, the
 * usual batch; only a batch that adds series opens a transaction for the capped insert.
 */
export async function insertCappedMetricPointsAlone(
  prisma: PrismaClient,
  runId: string,
  points: readonly MetricPointInput[],
  maxSeries: number,
): Promise<number> {
  const names = [...new Set(points.map((p) => p.name))];
  if (names.length === 0) return 0;
  if ((await knownNames(prisma, runId, names)).size === names.length)
    return insertMetricPoints(prisma, runId, points);
  return prisma.$transaction((tx) => insertCappedMetricPoints(tx, runId, points, maxSeries));
}
