/**
 * Finds runs that go through the queue (training and eval runs) that Postgres says are queued
 * or running but whose job the queue no longer holds as live (Redis lost its data, a job failed
 * where no worker could record it), and repairs them: the job is added again under the run's
 * own job name and payload (a training run resumes from its checkpoint, an eval starts over),
 * or, when the run has used its attempts or its job failed, the run is failed with the reason.
 * Nothing stays stuck.
 *
 * Every worker runs it; a Redis lock lets one of them act per period.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { PrismaClient } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { RetryPolicy } from '../queue/enqueue-run.js';
import { LIVE_JOB_STATES } from '../queue/job-states.js';
import type { RunLifecycle } from '../runs/run-lifecycle.js';
import { UNFINISHED_STATUSES } from '../spec/run-status.js';

/** The kinds of run that have a job in the queue. */
const QUEUED_KINDS = ['train', 'eval'] as const;

export interface ReconcilerDeps {
  prisma: PrismaClient;
  queue: Queue;
  lifecycle: RunLifecycle;
  logger: Logger;
  retry: RetryPolicy;
}

export interface ReconcileReport {
  requeued: string[];
  failed: string[];
}

/**
 * One pass over runs created more than `minAgeMs` ago (younger ones may be between their row
 * and their job being written).
 */
export async function reconcileOnce(
  deps: ReconcilerDeps,
  minAgeMs: number,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { requeued: [], failed: [] };
  const runs = await deps.prisma.run.findMany({
    where: {
      // Every kind with a job; external runs have none (their trainer finishes them).
      kind: { in: [...QUEUED_KINDS] },
      status: { in: [...UNFINISHED_STATUSES] },
      createdAt: { lt: new Date(Date.now() - minAgeMs) },
    },
    select: {
      id: true,
      kind: true,
      status: true,
      config: true,
      priority: true,
      attempts: true,
      lease: true,
    },
  });
  for (const run of runs) {
    const job = await deps.queue.getJob(run.id);
    const state = job ? await job.getState() : 'missing';
    if (LIVE_JOB_STATES.has(state)) continue;
    const log = deps.logger.child({ runId: run.id, jobId: run.id });
    if (state === 'missing' && run.attempts < deps.retry.attempts) {
      // changed meanwhile: look again next time
      if (!(await deps.lifecycle.requeueLost(run))) continue;
      log.warn({ was: run.status }, 'run had no job in the queue; enqueued it again');
      report.requeued.push(run.id);
      continue;
    }
    const reason =
      state === 'missing'
        ? `its job vanished from the queue after ${run.attempts} attempts`
        : state === 'failed'
          ? `its job failed: ${job?.failedReason ?? 'no reason recorded'}`
          : `its job ended (${state}) without recording a result`;
    const failed = await deps.lifecycle.failUnowned(run.id, {
      name: 'JobLost',
      message: reason,
      attempt: run.attempts,
      unrecoverable: true,
    });
    if (failed) {
      log.error({ reason }, 'run failed by the reconciler');
      report.failed.push(run.id);
    }
  }
  return report;
}

/** Runs `reconcileOnce` every `everyMs` on whichever worker takes the lock first. */
export function startReconciler(
  deps: ReconcilerDeps & { redis: Redis },
  everyMs: number,
): { stop(): void } {
  const lockKey = `${deps.queue.opts.prefix ?? 'bull'}:reconciler:lock`;
  const { redis } = deps;
  const tick = async (): Promise<void> => {
    const mine = await redis.set(lockKey, String(process.pid), 'PX', everyMs, 'NX');
    if (mine !== 'OK') return;
    const report = await reconcileOnce(deps, everyMs);
    if (report.requeued.length + report.failed.length > 0)
      deps.logger.info(report, 'reconciler repaired runs');
  };
  const timer = setInterval(() => {
    tick().catch((error: unknown) => deps.logger.warn({ err: error }, 'reconciler pass failed'));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
