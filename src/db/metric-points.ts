/**
 * Fast, idempotent insert of metric points: one statement with the points as four arrays
 * (`unnest`), so 10,000 points cost four bind parameters instead of 50,000 and one round trip.
 * The arrays travel as Postgres array literals built here (`{1,2,3}`): handing Prisma JS arrays
 * of 10,000 elements cost more than the insert itself.
 * Points already stored (same run, name, step) are left as they are; the rollup trigger sees
 * only the rows really inserted (see prisma/migrations/*_metric_rollups).
 */
import type { Prisma, PrismaClient } from './index.js';

export interface MetricPointInput {
  name: string;
  step: number;
  value: number;
  /** Wall time, ms since the epoch. */
  time: number;
}

/** Inserts `points` of run `runId`; returns how many were new. */
export async function insertMetricPoints(
  db: PrismaClient | Prisma.TransactionClient,
  runId: string,
  points: readonly MetricPointInput[],
): Promise<number> {
  if (points.length === 0) return 0;
  const names = arrayLiteral(points.map((p) => quoteElement(p.name)));
  const steps = arrayLiteral(points.map((p) => String(p.step)));
  const values = arrayLiteral(points.map((p) => String(p.value)));
  // Wall time travels as epoch milliseconds: "wallTime" is a UTC timestamp(3) without zone.
  const times = arrayLiteral(points.map((p) => String(p.time)));
  return db.$executeRaw`
    INSERT INTO "MetricPoint" ("runId", "name", "step", "value", "wallTime")
    SELECT ${runId}::uuid, u.name, u.step, u.value, to_timestamp(u.ms / 1000.0) AT TIME ZONE 'UTC'
    FROM unnest(${names}::text[], ${steps}::int[], ${values}::float8[], ${times}::float8[])
      AS u(name, step, value, ms)
    ON CONFLICT ("runId", "name", "step") DO NOTHING`;
}

function arrayLiteral(elements: string[]): string {
  return `{${elements.join(',')}}`;
}

/** A text element of an array literal: double-quoted, with `"` and `\` escaped. */
function quoteElement(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}
