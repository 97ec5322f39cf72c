/**
 * A job that needs more memory than its worker's share: the parent kills its child past the
 * limit (before the kernel's OOM killer picks a victim on the host), and the run fails once as
 * OutOfMemory, naming the limit and the estimate — no retry, since the same job would need the
 * same memory again.
 */
import { describe, expect, it } from 'vitest';
import { faultRunBody, reportFigures, useFaultRig } from './rig.js';

const rig = useFaultRig('child_memory');

describe('child memory limit', () => {
  it('a child past its memory share is killed and the run fails once as OutOfMemory', async () => {
    // Submitted while no worker is registered: the API's default cap applies, and the tiny
    // run (about 200 MiB) passes it. The worker then gives each child 150 MiB.
    const id = await rig().submit(faultRunBody('too-big-for-its-worker', 5));
    rig().startWorker({ WORKER_MEMORY_BYTES: String(150 * 2 ** 20) });
    const run = await rig().waitForRun(id, 'the run to end', (r) =>
      ['failed', 'succeeded', 'cancelled'].includes(r.status),
    );
    reportFigures(`[jobs] ${run.status}: ${run.error?.name}: ${run.error?.message}`);
    expect(run).toMatchObject({ status: 'failed', attempts: 1 });
    expect(run.error).toMatchObject({ name: 'OutOfMemory', unrecoverable: true });
    expect(run.error?.message).toContain('memory limit of 150 MiB');
    expect(run.error?.message).toMatch(/estimated to need \d+ MiB/);
    const job = await rig().queueJob(id);
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
  });
});
