/**
 * Reads a file of metric points, one JSON object a line (`{"name": "loss", "step": 3, "value":
 * 0.52, "time": "2025-01-01T00:00:00Z"}`, `time` optional), in batches of at most `batchSize`
 * points, without holding more than one batch in memory. Blank lines are skipped. A line that is
 * not such a point stops the reading with a `PointsFileError` naming its line; the server checks
 * the rest (name characters, step range, time format, unknown fields).
 */
import { open } from 'node:fs/promises';
import type { MetricPointInput } from './api-client.js';

export class PointsFileError extends Error {
  override name = 'PointsFileError';
}

export interface PointBatch {
  points: MetricPointInput[];
  /** The file's line number (from 1) of each point. */
  lines: number[];
}

export async function* readPointBatches(
  file: string,
  batchSize: number,
): AsyncGenerator<PointBatch> {
  let handle;
  try {
    handle = await open(file);
  } catch (error) {
    throw new PointsFileError(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    let batch: PointBatch = { points: [], lines: [] };
    let lineNumber = 0;
    for await (const line of handle.readLines({ encoding: 'utf8' })) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      batch.points.push(parsePoint(line, `${file}:${lineNumber}`));
      batch.lines.push(lineNumber);
      if (batch.points.length === batchSize) {
        yield batch;
        batch = { points: [], lines: [] };
      }
    }
    if (batch.points.length > 0) yield batch;
  } finally {
    await handle.close();
  }
}

function parsePoint(line: string, where: string): MetricPointInput {
  let point: unknown;
  try {
    point = JSON.parse(line);
  } catch (error) {
    throw new PointsFileError(`${where}: not JSON (${(error as Error).message})`);
  }
  const { name, step, value, time } = (point ?? {}) as Record<string, unknown>;
  if (
    typeof point !== 'object' ||
    point === null ||
    Array.isArray(point) ||
    typeof name !== 'string' ||
    !Number.isInteger(step) ||
    typeof value !== 'number' ||
    (time !== undefined && typeof time !== 'string')
  )
    throw new PointsFileError(
      `${where}: not a point {"name": string, "step": integer, "value": number, "time"?: string}`,
    );
  // Passed on whole: the server refuses fields it does not know, rather than them being dropped.
  return point as MetricPointInput;
}
