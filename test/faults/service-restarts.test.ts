/**
 * Fault case 6, and the reconciler: Redis or PostgreSQL restarts while a run trains (each a
 * private server of this file, so other test files keep theirs), and Redis loses its data.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  startPrivatePostgres,
  startPrivateRedis,
  type PrivateServer,
} from '../helpers/private-services.js';
import {
  createFaultRig,
  faultRunBody,
  STEPS_PER_EPOCH,
  type FaultRig,
  reportFigures,
} from './rig.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function rigWith(
  label: string,
  server: PrivateServer,
  kind: 'redis' | 'postgres',
  workerEnv: Record<string, string> = {},
): Promise<FaultRig> {
  cleanups.push(() => server.stop());
  const rig = await createFaultRig(label, {
    ...(kind === 'redis' ? { redisUrl: server.url } : { databaseServerUrl: server.url }),
    workerEnv,
  });
  cleanups.push(() => rig.close());
  return rig;
}

describe('a service restarts mid-run', () => {
  it('Redis restarts (2 s down): the worker reconnects and the run succeeds with every step once', async () => {
    const redis = await startPrivateRedis({ persistent: true });
    const rig = await rigWith('redis_restart', redis, 'redis');
    rig.startWorker();
    const id = await rig.submit(faultRunBody('redis-restart', 4));
    await rig.waitForRun(id, 'training', (r) => (r.progress?.step ?? 0) >= 8);
    const at = await rig.lastMetricStep(id);
    await redis.restart(2000);
    const done = await rig.waitForRun(
      id,
      'the run to succeed',
      (r) => r.status === 'succeeded',
      90_000,
    );
    reportFigures(
      `[fault 6] Redis restarted at step ${at}: run ${done.status}, attempts ${done.attempts}, resumedFromStep ${done.resumedFromStep}`,
    );
    await rig.expectCompleteMetrics(id, 4 * STEPS_PER_EPOCH);
  });

  it('PostgreSQL restarts (3 s down): metric batches wait and are written once, and the run succeeds', async () => {
    const pg = await startPrivatePostgres();
    const rig = await rigWith('pg_restart', pg, 'postgres');
    const worker = rig.startWorker();
    const id = await rig.submit(faultRunBody('pg-restart', 4));
    await rig.waitForRun(id, 'training', (r) => (r.progress?.step ?? 0) >= 8);
    const at = await rig.lastMetricStep(id);
    await pg.restart(3000);
    const done = await rig.waitForRun(
      id,
      'the run to succeed',
      (r) => r.status === 'succeeded',
      90_000,
    );
    reportFigures(
      `[fault 6] PostgreSQL restarted at step ${at}: run ${done.status}, attempts ${done.attempts}, resumedFromStep ${done.resumedFromStep}`,
    );
    expect(done.attempts).toBe(1); // buffered through, not retried
    expect(worker.log()).toMatch(/Postgres write failed; retrying/);
    expect(worker.log()).toMatch(/Postgres write succeeded again/);
    await rig.expectCompleteMetrics(id, 4 * STEPS_PER_EPOCH);
  });

  it('Redis loses its data mid-run: the reconciler puts the run back in the queue and it resumes to the end', async () => {
    const redis = await startPrivateRedis({ persistent: false });
    const rig = await rigWith('redis_lost', redis, 'redis', { RECONCILE_EVERY_MS: '1000' });
    const worker = rig.startWorker();
    const id = await rig.submit(faultRunBody('redis-lost', 4));
    await rig.waitForRun(id, 'training', (r) => (r.progress?.step ?? 0) >= 12);
    const flush = new Redis(redis.url);
    await flush.flushall();
    flush.disconnect();
    const done = await rig.waitForRun(
      id,
      'the run to succeed',
      (r) => r.status === 'succeeded',
      90_000,
    );
    reportFigures(
      `[reconciler] Redis flushed mid-run: run ${done.status}, attempts ${done.attempts}, resumedFromStep ${done.resumedFromStep}`,
    );
    expect(worker.log()).toMatch(/run had no job in the queue; enqueued it again/);
    expect(done.resumedFromStep).toBeGreaterThan(0);
    await rig.expectCompleteMetrics(id, 4 * STEPS_PER_EPOCH);
  });
});
