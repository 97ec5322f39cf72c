/**
 * Fault case 8: BullMQ delivers at least once. The same job delivered twice — to a second worker
 * while the first still trains (its lock lost), or again after the run has finished — leaves one
 * set of metrics and checkpoints.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../helpers/queue.js';
import { waitFor } from '../helpers/worker-process.js';
import {
  createFaultRig,
  faultRunBody,
  STEPS_PER_EPOCH,
  waitForKillPoint,
  type FaultRig,
} from './rig.js';
import { TRAINING_QUEUE } from '../../src/jobs.js';
import { enqueueTrainRun } from '../../src/run-queue.js';

let rig: FaultRig;
let redis: Redis;
beforeAll(async () => {
  rig = await createFaultRig('duplicate');
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  redis?.disconnect();
  await rig?.close();
});

describe('the same job delivered twice', () => {
  it('to a second worker while the first still trains: the first stops, its late writes are refused, one set of data remains', async () => {
    const a = rig.startWorker();
    const id = await rig.submit(faultRunBody('twice', 4));
    await rig.waitForRun(
      id,
      'worker A to train',
      (r) => r.status === 'running' && r.workerId?.endsWith(`-${a.pid}`) === true,
    );
    const b = rig.startWorker();
    await waitForKillPoint(rig, id, 10);
    // What a lost lock looks like to BullMQ (A's event loop blocked, or A cut off from Redis):
    // the lock is gone, so B's stalled-job check hands the job out again.
    expect(await redis.del(`${rig.prefix}:${TRAINING_QUEUE}:${id}:lock`)).toBe(1);

    const taken = await rig.waitForRun(
      id,
      'worker B to take the run over',
      (r) => r.workerId?.endsWith(`-${b.pid}`) === true && r.resumedFromStep !== null,
      30_000,
    );
    // A notices (its lock renewal or its next write fails) and stops training.
    await waitFor(
      'worker A to stop its child',
      () => (a.trainingChildren().length === 0 ? true : undefined),
      15_000,
      rig.logs,
    );
    const done = await rig.waitForRun(id, 'the run to succeed', (r) => r.status === 'succeeded');
    console.log(
      `[fault 8] job handed to a second worker; resumed from ${taken.resumedFromStep}; first worker stopped`,
    );
    expect(done.workerId).toMatch(new RegExp(`-${b.pid}$`));
    expect(a.log()).toMatch(
      /job lock lost|no longer owned|belongs to another attempt|claimed by another attempt/,
    );
    await rig.expectCompleteMetrics(id, 4 * STEPS_PER_EPOCH);
    const steps = await rig.checkpointSteps(id);
    expect(new Set(steps).size).toBe(steps.length);
    await Promise.all([a.terminate(), b.terminate()]);
  });

  it('again after the run finished: the worker skips it and changes nothing', async () => {
    const worker = rig.startWorker();
    const id = await rig.submit(faultRunBody('finished', 1));
    await rig.waitForRun(id, 'the run to succeed', (r) => r.status === 'succeeded');
    const before = await rig.db.prisma.metricPoint.findMany({
      where: { runId: id },
      orderBy: [{ name: 'asc' }, { step: 'asc' }],
    });
    const checkpointsBefore = await rig.checkpointSteps(id);

    const job = await rig.queueJob(id);
    await job!.remove();
    expect(await rig.queueJob(id)).toBeUndefined();
    // Delivered again, as a producer retry or a restored Redis snapshot would.
    const row = await rig.db.prisma.run.findUniqueOrThrow({ where: { id } });
    await enqueueTrainRun(rig.queue, row);
    await waitFor(
      'the redelivered job to be done with',
      async () => ((await (await rig.queueJob(id))?.getState()) === 'completed' ? true : undefined),
      30_000,
      rig.logs,
    );

    expect(worker.log()).toMatch(/run is no longer queued .*skipping the job/);
    const after = await rig.db.prisma.metricPoint.findMany({
      where: { runId: id },
      orderBy: [{ name: 'asc' }, { step: 'asc' }],
    });
    expect(after).toEqual(before);
    expect(await rig.checkpointSteps(id)).toEqual(checkpointsBefore);
    expect((await rig.run(id)).status).toBe('succeeded');
    await worker.terminate();
  });
});
