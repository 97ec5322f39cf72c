/**
 * Use cases of the runs resource: submit (row first, then the job), list, show, metrics,
 * checkpoints. Routers parse requests; this file talks to Postgres and the queue.
 */
import type { Queue } from 'bullmq';
import type { CancelRequests } from '../../queue/cancel-requests.js';
import { Prisma, type PrismaClient, type Run } from '../../db/index.js';
import { latestPoints, seriesMaxima } from '../../db/metric-rollups.js';
import type { Config } from '../../config.js';
import { TRAINING_QUEUE } from '../../queue/training-queue.js';
import { NOT_STARTED_JOB_STATES } from '../../queue/job-states.js';
import { DEFAULT_RETRY_POLICY, enqueueRun, type RetryPolicy } from '../../queue/enqueue-run.js';
import { HttpError, NotFoundError } from '../errors.js';
import type { RunEventPublisher } from '../../queue/run-events.js';
import { checkDataset, resolveEvalSpec } from './run-submission-checks.js';
import {
  runIdParam,
  type CreateExternalRunBody,
  type CreateRunBody,
  type FinishRunBody,
} from './runs.schemas.js';

export interface RunsServiceDeps {
  prisma: PrismaClient;
  queue: Queue;
  cancels: CancelRequests;
  /** Retries of a training job for transient faults (JOB_ATTEMPTS, JOB_BACKOFF_MS). */
  retry?: RetryPolicy;
  /** Live events (status changes) for the dashboards following a run. */
  events?: RunEventPublisher;
  /** DATA_ROOT: submissions' data sets are checked below it. */
  config: Pick<Config, 'DATA_ROOT'>;
}

interface LatestMetric {
  name: string;
  step: number;
  value: number;
}

/** What the list and a single run add to the row: read from the metric rollups. */
interface RunViewExtras {
  latestMetrics?: LatestMetric[];
  /** The highest `val/accuracy` so far; null when the run has none. */
  bestValAccuracy?: number | null;
}

/** The metric the runs list ranks runs by ("best val accuracy"). */
export const BEST_METRIC = 'val/accuracy';

export function runView(run: Run, { latestMetrics, bestValAccuracy }: RunViewExtras = {}) {
  return {
    id: run.id,
    kind: run.kind,
    status: run.status,
    name: run.name,
    priority: run.priority,
    config: run.config,
    progress: run.progress,
    attempts: run.attempts,
    resumedFromStep: run.resumedFromStep,
    backend: run.backend,
    device: run.device,
    workerId: run.workerId,
    heartbeatAt: run.heartbeatAt?.toISOString() ?? null,
    error: run.error,
    result: run.result,
    dataInfo: (run.dataInfo as Record<string, unknown> | null) ?? null,
    createdAt: run.createdAt.toISOString(),
    startedAt: run.startedAt?.toISOString() ?? null,
    finishedAt: run.finishedAt?.toISOString() ?? null,
    ...(latestMetrics
      ? {
          latestMetrics: Object.fromEntries(
            latestMetrics.map((m) => [m.name, { step: m.step, value: m.value }]),
          ),
        }
      : {}),
    ...(bestValAccuracy !== undefined ? { bestValAccuracy } : {}),
  };
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
    const date = new Date(createdAt);
    if (Number.isNaN(date.getTime()) || !runIdParam.safeParse(id).success)
      throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw new HttpError(400, 'Invalid request', 'query.cursor: not a cursor this API returned', [
      { path: 'query.cursor', message: 'not a cursor this API returned' },
    ]);
  }
}

export function createRunsService({
  prisma,
  queue,
  cancels,
  retry = DEFAULT_RETRY_POLICY,
  events,
  config,
}: RunsServiceDeps) {
  const statusChanged = (run: Run): void =>
    void events?.publish({ type: 'status', runId: run.id, status: run.status });

  const enqueue = (run: Run): Promise<void> => enqueueRun(queue, run, retry);

  /**
   * A replayed submission of a run that is still queued enqueues again: if the first request
   * died between writing the row and adding the job, the retry repairs it.
   */
  async function ensureEnqueued(run: Run): Promise<Run> {
    if (run.status !== 'queued') return run;
    try {
      await enqueue(run);
    } catch {
      throw new HttpError(503, 'Service Unavailable', 'could not reach the queue; try again');
    }
    return run;
  }

  /** Runs that go through the queue (all but external ones). */
  type QueuedRunBody = Exclude<CreateRunBody, CreateExternalRunBody>;

  async function findRun(id: string): Promise<Run> {
    const run = await prisma.run.findUnique({ where: { id } });
    if (!run) throw new NotFoundError(`run ${id}`);
    return run;
  }

  /** The spec stored on the run (and carried by its job), after the submission checks. */
  async function specOf(body: QueuedRunBody): Promise<Record<string, unknown>> {
    if (body.kind === 'train') {
      const spec = {
        model: body.model,
        dataset: body.dataset,
        train: body.train,
        ...(body.checkpoint ? { checkpoint: body.checkpoint } : {}),
      };
      await checkDataset(config.DATA_ROOT, spec.dataset, spec.model.numClasses, 'train');
      return spec;
    }
    return resolveEvalSpec(prisma, config.DATA_ROOT, body);
  }

  return {
    /** A training run (queued) or an external one (running at once, never queued). */
    async submitRun(
      body: CreateRunBody,
      idempotencyKey?: string,
    ): Promise<{ run: Run; replayed: boolean }> {
      const result =
        body.kind === 'external'
          ? await this.submitExternalRun(body, idempotencyKey)
          : await this.submitQueuedRun(body, idempotencyKey);
      if (!result.replayed) statusChanged(result.run);
      return result;
    },

    /** An external run: its trainer logs points and finishes it through the API. */
    async submitExternalRun(
      body: CreateExternalRunBody,
      idempotencyKey?: string,
    ): Promise<{ run: Run; replayed: boolean }> {
      if (idempotencyKey) {
        const existing = await prisma.run.findUnique({ where: { idempotencyKey } });
        if (existing) return { run: existing, replayed: true };
      }
      try {
        const now = new Date();
        const run = await prisma.run.create({
          data: {
            kind: 'external',
            status: 'running',
            name: body.name,
            priority: 0,
            config: body.config as Prisma.InputJsonValue,
            idempotencyKey: idempotencyKey ?? null,
            startedAt: now,
            heartbeatAt: now,
          },
        });
        return { run, replayed: false };
      } catch (error) {
        if (
          idempotencyKey &&
          error instanceof Prisma.PrismaClientKnownRequestError &&
          error.code === 'P2002'
        ) {
          const existing = await prisma.run.findUnique({ where: { idempotencyKey } });
          if (existing) return { run: existing, replayed: true };
        }
        throw error;
      }
    },

    /** Ends a running external run. */
    async finishExternalRun(id: string, body: FinishRunBody): Promise<Run> {
      const run = await findRun(id);
      if (run.kind !== 'external')
        throw new HttpError(
          409,
          'Conflict',
          `run ${id} is a ${run.kind} run; its worker finishes it`,
        );
      const { count } = await prisma.run.updateMany({
        where: { id, status: 'running' },
        data: {
          status: body.status,
          finishedAt: new Date(),
          ...(body.error
            ? {
                error: {
                  name: 'ExternalRunFailed',
                  message: body.error,
                  attempt: 1,
                  unrecoverable: true,
                },
              }
            : {}),
        },
      });
      if (count === 0)
        throw new HttpError(409, 'Conflict', `run ${id} is ${run.status}, not running`);
      const finished = await findRun(id);
      statusChanged(finished);
      return finished;
    },

    /**
     * A training or eval run: checks the submission (data set, an eval's checkpoint), writes the
     * run row, then enqueues its job (job id = run id). With an idempotency key, a repeated
     * request returns the first run instead of creating another.
     */
    async submitQueuedRun(
      body: QueuedRunBody,
      idempotencyKey?: string,
    ): Promise<{ run: Run; replayed: boolean }> {
      if (idempotencyKey) {
        const existing = await prisma.run.findUnique({ where: { idempotencyKey } });
        if (existing) return { run: await ensureEnqueued(existing), replayed: true };
      }
      const { kind, name, priority } = body;
      const spec = await specOf(body);
      let run: Run;
      try {
        run = await prisma.run.create({
          data: {
            kind,
            name: name ?? null,
            priority,
            config: spec as Prisma.InputJsonValue,
            idempotencyKey: idempotencyKey ?? null,
          },
        });
      } catch (error) {
        // Two requests with one key raced; the other one created the run.
        if (
          idempotencyKey &&
          error instanceof Prisma.PrismaClientKnownRequestError &&
          error.code === 'P2002'
        ) {
          const existing = await prisma.run.findUnique({ where: { idempotencyKey } });
          if (existing) return { run: await ensureEnqueued(existing), replayed: true };
        }
        throw error;
      }
      try {
        await enqueue(run);
      } catch {
        // No job, so no run: remove the row rather than leave a run that never starts.
        await prisma.run.delete({ where: { id: run.id } }).catch(() => undefined);
        throw new HttpError(
          503,
          'Service Unavailable',
          `could not enqueue the run on '${TRAINING_QUEUE}'; nothing was created, try again`,
        );
      }
      return { run, replayed: false };
    },

    /**
     * Cancels a run. A queued one is removed from the queue and marked cancelled at once
     * (`accepted: false`); a running one is flagged for its worker, which stops it between two
     * steps and marks it cancelled (`accepted: true`).
     */
    async cancelRun(id: string): Promise<{ run: Run; accepted: boolean }> {
      const run = await findRun(id);
      if (run.status === 'succeeded' || run.status === 'failed' || run.status === 'cancelled') {
        throw new HttpError(
          409,
          'Conflict',
          `run ${id} has already ${run.status === 'cancelled' ? 'been cancelled' : run.status}`,
        );
      }
      // The job's state decides, not the run's: a run left `running` by a worker that died may
      // have its job waiting in the queue again.
      {
        const job = await queue.getJob(id);
        const state = job ? await job.getState() : 'unknown';
        let removed = !job;
        if (job && NOT_STARTED_JOB_STATES.has(state)) {
          // Fails if a worker took the job meanwhile: then it is cancelled as a running one.
          removed = await job.remove().then(
            () => true,
            () => false,
          );
        }
        if (removed) {
          const { count } = await prisma.run.updateMany({
            where: { id, status: { in: ['queued', 'running'] } },
            data: { status: 'cancelled', finishedAt: new Date() },
          });
          if (count === 1) {
            const cancelled = await findRun(id);
            statusChanged(cancelled);
            return { run: cancelled, accepted: false };
          }
        }
      }
      await cancels.request(id);
      return { run: await findRun(id), accepted: true };
    },

    /**
     * Puts a failed run back in the queue: a fresh job (the failed one is removed) that resumes
     * from the run's newest checkpoint with a new set of attempts.
     */
    async retryRun(id: string): Promise<Run> {
      const run = await findRun(id);
      if (run.status !== 'failed')
        throw new HttpError(
          409,
          'Conflict',
          `run ${id} is ${run.status}; only failed runs can be retried`,
        );
      const job = await queue.getJob(id);
      if (job) {
        const state = await job.getState();
        if (state !== 'failed' && state !== 'completed')
          throw new HttpError(409, 'Conflict', `run ${id} still has a job in the queue (${state})`);
        await job.remove();
      }
      const { count } = await prisma.run.updateMany({
        where: { id, status: 'failed' },
        data: { status: 'queued', finishedAt: null, workerId: null, lease: null },
      });
      if (count === 0)
        throw new HttpError(409, 'Conflict', `run ${id} changed meanwhile; try again`);
      // The run as accepted: a worker may take the job the moment it is added.
      const queued = await findRun(id);
      try {
        await enqueue(queued);
      } catch {
        await prisma.run.update({
          where: { id },
          data: { status: 'failed', finishedAt: new Date() },
        });
        throw new HttpError(503, 'Service Unavailable', 'could not reach the queue; try again');
      }
      statusChanged(queued);
      return queued;
    },

    /**
     * The dead-letter view: failed runs, newest first, each with its error and what the queue
     * still knows of its job (attempts made, BullMQ's failure reason).
     */
    async listDeadLetters(query: { limit: number; cursor?: string }) {
      const page = await this.listRuns({ ...query, status: 'failed' });
      const items = await Promise.all(
        page.items.map(async (run) => {
          const job = await queue.getJob(run.id);
          return {
            ...run,
            job: job
              ? {
                  state: await job.getState(),
                  attemptsMade: job.attemptsMade,
                  failedReason: job.failedReason ?? null,
                }
              : null,
          };
        }),
      );
      return { items, nextCursor: page.nextCursor };
    },

    async listRuns(query: {
      status?: Run['status'];
      kind?: Run['kind'];
      limit: number;
      cursor?: string;
    }) {
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
        items: page.map((r) => runView(r, { bestValAccuracy: best.get(r.id) ?? null })),
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

export type RunsService = ReturnType<typeof createRunsService>;
