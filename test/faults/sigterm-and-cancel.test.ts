/**
 * Fault cases 3 and 4: a worker told to stop (SIGTERM, as `docker compose stop` does) with a run
 * in each of its two device slots, and cancelling runs that are queued and running.
 */
import { describe, expect, it } from 'vitest';
import { postJson } from '../helpers/api.js';
import { faultRunBody, useFaultRig, reportFigures } from './rig.js';

const rig = useFaultRig('sigterm_cancel');

describe('graceful stop and cancel', () => {
  it('SIGTERM with two slots busy: both runs checkpoint and go back to the queue with no attempt used, and the worker exits within the grace period', async () => {
    const worker = rig().startWorker({ WORKER_CONCURRENCY: '2', SHUTDOWN_GRACE_MS: '10000' });
    const ids = [
      await rig().submit(faultRunBody('slot-a', 50)),
      await rig().submit(faultRunBody('slot-b', 50)),
    ];
    const running = await Promise.all(
      ids.map((id) =>
        rig().waitForRun(id, 'both runs to train', (r) => (r.progress?.step ?? 0) >= 3),
      ),
    );
    // One run per CPU slot, at the same time.
    expect(running.map((r) => r.device).sort()).toEqual(['cpu:0', 'cpu:1']);

    const { code, ms } = await worker.terminate();
    reportFigures(`[fault 3] worker exited ${ms} ms after SIGTERM (grace 10000 ms), code ${code}`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    for (const id of ids) {
      const run = await rig().run(id);
      expect(run).toMatchObject({ status: 'queued', workerId: null, attempts: 1 });
      // The checkpoint was taken where training stopped, so nothing is lost.
      expect(await rig().checkpointSteps(id)).toContain(run.progress?.step);
      expect(await rig().lastMetricStep(id)).toBe((run.progress?.step ?? 0) - 1);
      const job = await rig().queueJob(id);
      expect(job?.attemptsMade).toBe(0);
    }
  });

  it('cancels a queued run at once and a running one within 10 s, without retry, and the slot takes the next run', async () => {
    const worker = rig().startWorker();
    // The slot is busy with the runs of the previous test first; cancel those.
    const running = await rig().submit(faultRunBody('to-cancel-running', 50));
    const queued = await rig().submit(faultRunBody('to-cancel-queued', 50));
    const next = await rig().submit(faultRunBody('next', 1));
    for (const stale of await rig().activeRunIds()) {
      if (![running, queued, next].includes(stale))
        await postJson(`${rig().apiUrl}/v1/runs/${stale}/cancel`, {});
    }
    await rig().waitForRun(running, 'the run to train', (r) => (r.progress?.step ?? 0) >= 2);

    const q = await postJson(`${rig().apiUrl}/v1/runs/${queued}/cancel`, {});
    expect(q.status).toBe(200);
    expect(q.json.status).toBe('cancelled');
    expect(await rig().queueJob(queued)).toBeUndefined();

    const requested = Date.now();
    const r = await postJson(`${rig().apiUrl}/v1/runs/${running}/cancel`, {});
    expect(r.status).toBe(202);
    const cancelled = await rig().waitForRun(running, 'cancel', (x) => x.status === 'cancelled');
    const cancelMs = Date.now() - requested;
    reportFigures(`[fault 4] running run cancelled ${cancelMs} ms after the request`);
    expect(cancelMs).toBeLessThan(10_000);
    expect(cancelled.attempts).toBe(1);
    expect(await (await rig().queueJob(running))?.getState()).toBe('completed');

    const after = await rig().waitForRun(
      next,
      'the next run to succeed',
      (x) => x.status === 'succeeded',
    );
    expect(after.workerId).toMatch(new RegExp(`-${worker.pid}$`));
    expect((await rig().run(queued)).status).toBe('cancelled'); // never ran
  });
});
