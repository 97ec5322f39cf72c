/**
 * Reading runs: one page of the list (newest first, keyset-paged by an opaque cursor), one run
 * with its latest metrics, and a run's checkpoints.
 */
import type { PrismaClient, Run } from '../../db/index.js';
import { latestPoints, seriesMaxima } from '../../db/metric-rollups.js';
import { RunNotFoundError, UnusableInputError } from '../../runs/run-errors.js';
import type { RunKind, RunStatus } from '../../spec/run-status.js';
import { BEST_METRIC, runListItem, runView } from './run-presenter.js';
import { runIdParam } from './runs.schemas.js';

/** A page of the list as asked for: filters, size and where the previous page ended. */
export interface RunListQuery {
  status?: RunStatus;
  kind?: RunKind;
  limit: number;
  cursor?: string;
}

function encodeCursor(run: Pick<Run, 'createdAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([run.createdAt.toISOString(), run.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [
      string,
      string,
    ];
    // Only what encodeCursor writes: an ISO time of years 1970..9999, which Postgres can
    // compare (JavaScript dates reach year 275760, timestamps only 294276, and not backwards).
    const date = new Date(createdAt);
    if (
      typeof createdAt !== 'string' ||
      !/^(19[7-9]\d|[2-9]\d{3})-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(createdAt) ||
      Number.isNaN(date.getTime()) ||
      date.toISOString() !== createdAt ||
      !runIdParam.safeParse(id).success
    )
      throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    const message = 'not a cursor this API returned';
    throw new UnusableInputError('query.cursor', message, {
      malformed: true,
      detail: `query.cursor: ${message}`,
    });
  }
}

export function createRunListing(prisma: PrismaClient) {
  async function findRun(id: string): Promise<Run> {
    const run = await prisma.run.findUnique({ where: { id } });
    if (!run) throw new RunNotFoundError(`run ${id}`);
    return run;
  }

  return {
    findRun,

    async listRuns(query: RunListQuery) {
      const after = query.cursor ? decodeCursor(query.cursor) : undefined;
      const runs = await prisma.run.findMany({
        where: {
          ...(query.status ? { status: query.status } : {}),
          ...(query.kind ? { kind: query.kind } : {}),
          ...(after
            ? {
                OR: [
                  { createdAt: { lt: after.createdAt } },
                  { createdAt: after.createdAt, id: { lt: after.id } },
                ],
              }
            : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: query.limit + 1,
      });
      const page = runs.slice(0, query.limit);
      const last = page[page.length - 1];
      const best = await seriesMaxima(
        prisma,
        page.map((r) => r.id),
        BEST_METRIC,
      );
      return {
        items: page.map((r) => runListItem(r, { bestValAccuracy: best.get(r.id) ?? null })),
        nextCursor: runs.length > query.limit && last ? encodeCursor(last) : null,
      };
    },

    async getRun(id: string) {
      const run = await findRun(id);
      const [latestMetrics, best] = await Promise.all([
        latestPoints(prisma, id),
        seriesMaxima(prisma, [id], BEST_METRIC),
      ]);
      return runView(run, { latestMetrics, bestValAccuracy: best.get(id) ?? null });
    },

    async getCheckpoints(id: string) {
      await findRun(id);
      const checkpoints = await prisma.checkpoint.findMany({
        where: { runId: id },
        orderBy: { step: 'asc' },
      });
      return {
        items: checkpoints.map((c) => ({
          id: c.id,
          step: c.step,
          epoch: c.epoch,
          bytes: Number(c.bytes),
          sha256: c.sha256,
          metrics: c.metrics,
          createdAt: c.createdAt.toISOString(),
        })),
      };
    },
  };
}

export type RunListing = ReturnType<typeof createRunListing>;
