/**
 * Jobs that fight the worker: a config that diverges, a child that does not answer a cancel
 * (stuck before its first step, or killed meanwhile). Each ends once, as what it is, without
 * spending the run's retries.
 */
import { describe, expect, it } from 'vitest';
import { postJson } from '../helpers/api.js';
import { isAlive, waitFor, type WorkerProcess } from '../helpers/worker-process.js';
import { faultRunBody, reportFigures, useFaultRig } from './rig.js';

const rig = useFaultRig('hostile_jobs');

/** The run's training child, frozen (SIGSTOP) as soon as it appears: it hears no stop message. */
async function freezeChild(worker: WorkerProcess): Promise<number> {
  const pid = await waitFor(
    'the training child',
    () => worker.trainingChildren()[0],
    60_000,
    rig().logs,
  );
  process.kill(pid, 'SIGSTOP');
  return pid;
}

/** Cancels a running run and waits until its worker has passed the request on to the child. */
async function cancelRunning(worker: WorkerProcess, id: string): Promise<void> {
  const res = await postJson(`${rig().apiUrl}/v1/runs/${id}/cancel`, {});
  expect(res.status).toBe(202);
  await waitFor(
    'the worker to see the cancel request',
    () => (worker.log().includes('"msg":"cancel requested"') ? true : undefined),
    20_000,
    rig().logs,
  );
}

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

  it('a cancel sent before the first step is honoured even when the child is then killed (as by the kernel): cancelled, not re-queued', async () => {
    // A long grace, so only the outside kill ends the child.
    const worker = rig().startWorker({ CANCEL_GRACE_MS: '60000' });
    const id = await rig().submit(faultRunBody('cancel-then-killed', 50));
    const pid = await freezeChild(worker);
    const before = await rig().run(id);
    await cancelRunning(worker, id);
    process.kill(pid, 'SIGKILL');
    const run = await rig().waitForRun(id, 'the run to end', (r) =>
      ['cancelled', 'failed', 'succeeded'].includes(r.status),
    );
    reportFigures(`[jobs] killed child at step ${before.progress?.step ?? 0}: run ${run.status}`);
    expect(run).toMatchObject({ status: 'cancelled', attempts: 1 });
    expect(await (await rig().queueJob(id))?.getState()).toBe('completed');
  });

  it('a child that does not stop within CANCEL_GRACE_MS of a cancel is killed, and the run ends cancelled', async () => {
    const worker = rig().startWorker({ CANCEL_GRACE_MS: '2000' });
    const id = await rig().submit(faultRunBody('cancel-unanswered', 50));
    const pid = await freezeChild(worker);
    const requested = Date.now();
    await cancelRunning(worker, id);
    const run = await rig().waitForRun(
      id,
      'the run to be cancelled',
      (r) => r.status !== 'running' && r.status !== 'queued',
      30_000,
    );
    reportFigures(`[jobs] frozen child cancelled after ${Date.now() - requested} ms (grace 2000)`);
    expect(run).toMatchObject({ status: 'cancelled', attempts: 1 });
    expect(isAlive(pid)).toBe(false);
    expect(await (await rig().queueJob(id))?.getState()).toBe('completed');
  });
});
