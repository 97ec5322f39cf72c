import type { Queue } from 'bullmq';
import { Router } from 'express';
import type { PrismaClient } from '../../db/index.js';

/** /healthz: the process answers. /readyz: it can reach Redis and Postgres. */
export function createHealthRouter(deps: { prisma: PrismaClient; queue: Queue }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const check = async (probe: () => Promise<unknown>): Promise<'ok' | 'unreachable'> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          probe(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('timeout')), 2000);
          }),
        ]);
        return 'ok';
      } catch {
        return 'unreachable';
      } finally {
        clearTimeout(timer);
      }
    };
    const [redis, postgres] = await Promise.all([
      check(() => deps.queue.getJobCounts('active')),
      check(() => deps.prisma.$queryRaw`SELECT 1`),
    ]);
    const ready = redis === 'ok' && postgres === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', redis, postgres });
  });
  return router;
}
