import type { Queue } from 'bullmq';
import { z } from 'zod';
import type { PrismaClient } from '../../db/index.js';
import { defineRoute, type RouteSpec } from '../route.js';

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
});
export type QueuesResponse = z.output<typeof queuesResponse>;

export function queuesRoutes(deps: { prisma: PrismaClient; queue: Queue }): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/queues',
      tag: 'queues',
      summary: 'Job counts per state and live workers',
      request: {},
      responses: { 200: { description: 'Queues and workers', schema: queuesResponse } },
      async handle(_input, res) {
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
      },
    }),
  ];
}
