import type { Queue } from 'bullmq';
import { Router } from 'express';
import type { PrismaClient } from '../../db/index.js';

/** A worker that has not heartbeaten for this long is not listed as alive. */
const WORKER_ALIVE_MS = 60_000;

/** The job states `GET /v1/queues` counts. */
export const COUNTED_JOB_STATES = [
  'waiting',
  'prioritized',
  'active',
  'delayed',
  'completed',
  'failed',
] as const;

export function createQueuesRouter(deps: { prisma: PrismaClient; queue: Queue }): Router {
  const router = Router();
  router.get('/', async (_req, res) => {
    const counts = await deps.queue.getJobCounts(...COUNTED_JOB_STATES);
    const workers = await deps.prisma.worker.findMany({
      where: { lastSeenAt: { gte: new Date(Date.now() - WORKER_ALIVE_MS) } },
      orderBy: { id: 'asc' },
    });
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
    });
  });
  return router;
}
