/**
 * Fault case 8: BullMQ delivers at least once. The same job delivered twice — to a second worker
 * while the first still trains (its lock lost), or again after the run has finished — leaves one
 * set of metrics and checkpoints.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../helpers/queue.js';
import { isAlive, waitFor } from '../helpers/worker-process.js';
import {
  faultRunBody,
  useFaultRig,
  STEPS_PER_EPOCH,
  waitForKillPoint,
  reportFigures,
} from './rig.js';
import { TRAINING_QUEUE } from '../../src/queue/training-queue.js';
import { enqueueTrainRun } from '../../src/queue/enqueue-run.js';

const rig = useFaultRig('duplicate');
let redis: Redis;
beforeAll(() => {
  redis = new Redis(REDIS_URL);
});
afterAll(() => {
  redis?.disconnect();
});

describe('the same job delivered twice', () => {
  it('to a second worker while the first still trains: the first stops, its late writes are refused, one set of data remains', async () => {
    const a = rig().startWorker();
    const id = await rig().submit(faultRunBody('twice', 4));
    await rig().waitForRun(
      id,
      'worker A to train',
      (r) => r.status === 'running' && r.workerId?.endsWith(`-${a.pid}`) === true,
    );
    const b = rig().startWorker();
    await waitForKillPoint(rig(), id, 10);
    const [firstChild] = a.trainingChildren();
    expect(firstChild).toBeDefined();
    const firstLease = (await rig().db.prisma.run.findUniqueOrThrow({ where: { id } })).lease;
    // What a lost lock looks like to BullMQ (A's event loop blocked, or A cut off from Redis):
    // the lock is gone, so a stalled-job check hands the job out again while A still trains.
    expect(await redis.del(`${rig().prefix}:${TRAINING_QUEUE}:${id}:lock`)).toBe(1);

    // A notices (its lock renewal fails, or a write is refused) and stops its training.
    await waitFor(
      'the first delivery to stop training',
      () => (isAlive(firstChild!) ? undefined : true),
      20_000,
      rig().logs,
    );
    expect(a.log()).toMatch(/job lock lost|cannot record this attempt|claimed by another attempt/);
    // The second delivery (on B, or on A once its slot is free) claims the run and resumes it.
    const taken = await waitFor(
      'a second delivery to resume the run',
      async () => {
        const row = await rig().db.prisma.run.findUniqueOrThrow({ where: { id } });
        return row.lease !== null && row.lease !== firstLease && row.resumedFromStep !== null
          ? row
          : undefined;
      },
      40_000,
      rig().logs,
    );
    const done = await rig().waitForRun(id, 'the run to succeed', (r) => r.status === 'succeeded');
    reportFigures(
      `[fault 8] lock lost at step ~${taken.resumedFromStep}; first delivery stopped; the ` +
        `second (on ${taken.workerId?.endsWith(`-${b.pid}`) ? 'the other worker' : 'the same worker'}) ` +
        `resumed from ${taken.resumedFromStep} and the run ${done.status}`,
    );
    await rig().expectCompleteMetrics(id, 4 * STEPS_PER_EPOCH);
    const steps = await rig().checkpointSteps(id);
    expect(new Set(steps).size).toBe(steps.length);
    await Promise.all([a.terminate(), b.terminate()]);
  });

  it('again after the run finished: the worker skips it and changes nothing', async () => {
    const worker = rig().startWorker();
    const id = await rig().submit(faultRunBody('finished', 1));
    await rig().waitForRun(id, 'the run to succeed', (r) => r.status === 'succeeded');
    const before = await rig().db.prisma.metricPoint.findMany({
      where: { runId: id },
      orderBy: [{ name: 'asc' }, { step: 'asc' }],
    });
    const checkpointsBefore = await rig().checkpointSteps(id);

    const job = await rig().queueJob(id);
    await job!.remove();
    expect(await rig().queueJob(id)).toBeUndefined();
    // Delivered again, as a producer retry or a restored Redis snapshot would.
    const row = await rig().db.prisma.run.findUniqueOrThrow({ where: { id } });
    await enqueueTrainRun(rig().queue, row);
    // Done with, and said so (the log line crosses a pipe, so it may arrive a little later).
    await waitFor(
      'the redelivered job to be skipped',
      async () =>
        (await (await rig().queueJob(id))?.getState()) === 'completed' &&
        /run is no longer queued .*skipping the job/.test(worker.log())
          ? true
          : undefined,
      30_000,
      rig().logs,
    );
    const after = await rig().db.prisma.metricPoint.findMany({
      where: { runId: id },
      orderBy: [{ name: 'asc' }, { step: 'asc' }],
    });
    expect(after).toEqual(before);
    expect(await rig().checkpointSteps(id)).toEqual(checkpointsBefore);
    expect((await rig().run(id)).status).toBe('succeeded');
    await worker.terminate();
  });
});
