/**
 * Jobs that fight the worker: a config that diverges, a child that does not answer a cancel
 * (stuck before its first step, or killed meanwhile). Each ends once, as what it is, without
 * spending the run's retries.
 */
import { describe, expect, it } from 'vitest';
import { faultRunBody, useFaultRig } from './rig.js';

const rig = useFaultRig('hostile_jobs');

describe('hostile jobs', () => {
  it('a diverging config (learning rate 10) fails once as Diverged, naming the step and the value', async () => {
    rig().startWorker();
    const body = faultRunBody('lr-10', 1);
    (body.train as Record<string, unknown>).optimizer = { type: 'sgd', learningRate: 10 };
    const id = await rig().submit(body);
    const run = await rig().waitForRun(id, 'the run to fail', (r) => r.status === 'failed');
    expect(run.attempts).toBe(1);
    expect(run.error).toMatchObject({ name: 'Diverged', unrecoverable: true });
    expect(run.error?.message).toMatch(/step \d+/);
    expect(run.error?.message).toMatch(/NaN|Infinity/);
    // No retry was scheduled: BullMQ holds the job as failed after its first attempt.
    const job = await rig().queueJob(id);
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
  });
});
