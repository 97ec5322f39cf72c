import type { Queue } from 'bullmq';
import { z } from 'zod';
import type { PrismaClient } from '../../db/index.js';
import { COUNTED_JOB_STATES } from '../../queue/job-states.js';
import { aliveSince } from '../../queue/worker-liveness.js';
import { defineRoute, type RouteSpec } from '../route.js';

/** Active jobs listed, oldest first; `counts.active` has the full number. */
const MAX_ACTIVE_LISTED = 50;

export const queuesResponse = z.object({
  queues: z.array(
    z.object({
      name: z.string(),
      counts: z.record(z.string(), z.number().int()),
    }),
  ),
  /** Workers seen in the last minute. */
  workers: z.array(
    z.object({
      id: z.string(),
      host: z.string(),
      backend: z.string().nullable(),
      devices: z.unknown(),
      startedAt: z.iso.datetime(),
      lastSeenAt: z.iso.datetime(),
    }),
  ),
  /** Jobs a worker holds now (at most 50), with the run each trains or evaluates. */
  active: z.array(
    z.object({
      runId: z.string(),
      /** The job's name: `train` or `eval`. */
      job: z.string(),
      /** 1 for the first try; more after a crash or a lost worker. */
      attempt: z.number().int(),
      /** When the worker took the job. */
      since: z.iso.datetime().nullable(),
      runName: z.string().nullable(),
      workerId: z.string().nullable(),
      device: z.string().nullable(),
      progress: z.unknown(),
    }),
  ),
});
export type QueuesResponse = z.output<typeof queuesResponse>;

export function queuesRoutes(deps: { prisma: PrismaClient; queue: Queue }): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/queues',
      tag: 'queues',
      summary: 'Job counts per state, live workers and active jobs',
      request: {},
      responses: { 200: { description: 'Queues and workers', schema: queuesResponse } },
      async handle(_input, res) {
        const [counts, workers, activeJobs] = await Promise.all([
          deps.queue.getJobCounts(...COUNTED_JOB_STATES),
          deps.prisma.worker.findMany({
            where: { lastSeenAt: { gte: aliveSince() } },
            orderBy: { id: 'asc' },
          }),
          deps.queue.getJobs(['active'], 0, MAX_ACTIVE_LISTED - 1, true),
        ]);
        // A job's id is its run's id (src/queue/enqueue-run.ts); a job may be gone by the time it is read.
        const jobs = activeJobs.filter((j) => j?.id !== undefined);
        const runs = await deps.prisma.run.findMany({
          where: { id: { in: jobs.map((j) => j.id!) } },
          select: { id: true, name: true, workerId: true, device: true, progress: true },
        });
        const runById = new Map(runs.map((r) => [r.id, r]));
        res.json({
          queues: [{ name: deps.queue.name, counts }],
          workers: workers.map((w) => ({
            id: w.id,
            host: w.host,
            backend: w.backend,
            devices: w.devices,
            startedAt: w.startedAt.toISOString(),
            lastSeenAt: w.lastSeenAt.toISOString(),
          })),
          active: jobs.map((j) => {
            const run = runById.get(j.id!);
            return {
              runId: j.id!,
              job: j.name,
              // Started attempts count a take-over after a stalled (lost) worker too, which
              // attemptsMade (failures only) does not.
              attempt: Math.max(j.attemptsStarted, j.attemptsMade + 1),
              since: j.processedOn ? new Date(j.processedOn).toISOString() : null,
              runName: run?.name ?? null,
              workerId: run?.workerId ?? null,
              device: run?.device ?? null,
              progress: run?.progress ?? null,
            };
          }),
        });
      },
    }),
  ];
}
