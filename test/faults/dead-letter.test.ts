/**
 * A run that uses up its attempts lands in the dead-letter view with its cause, and a retry
 * from there resumes it from its checkpoint.
 */
import { describe, expect, it } from 'vitest';
import { createCancelRequests } from '../../src/queue/cancel-requests.js';
import { getJson, postJson } from '../helpers/api.js';
import { REDIS_URL } from '../helpers/queue.js';
import { faultRunBody, useFaultRig, STEPS_PER_EPOCH, waitForKillPoint } from './rig.js';

const rig = useFaultRig('dead_letter', { attempts: 1 });

describe('dead letters', () => {
  it('lists a run whose last attempt crashed, with its error, and retries it from its checkpoint', async () => {
    const worker = rig().startWorker();
    const id = await rig().submit(faultRunBody('crashes'));
    const other = await rig().submit(faultRunBody('fine', 1));
    await waitForKillPoint(rig(), id, 10);
    const [child] = worker.trainingChildren();
    process.kill(child!, 'SIGKILL');
    const failed = await rig().waitForRun(id, 'the run to fail', (r) => r.status === 'failed');
    expect(failed.error).toMatchObject({ name: 'TrainingProcessCrashed' });
    await rig().waitForRun(other, 'the other run to succeed', (r) => r.status === 'succeeded');

    const letters = await getJson(`${rig().apiUrl}/v1/dead-letter`);
    expect(letters.status).toBe(200);
    expect(letters.json.items.map((r: { id: string }) => r.id)).toEqual([id]);
    expect(letters.json.items[0]).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: { name: 'TrainingProcessCrashed', unrecoverable: false },
      job: { state: 'failed', attemptsMade: 1 },
    });
    expect(letters.json.items[0].job.failedReason).toMatch(/training process exited/);

    // A cancel asked for while the run was failing (too late to be honoured) must not end the
    // retried run when a worker takes it.
    const cancels = createCancelRequests(REDIS_URL, rig().prefix);
    await cancels.request(id);

    // Only failed runs can be retried.
    expect((await postJson(`${rig().apiUrl}/v1/runs/${other}/retry`, {})).status).toBe(409);
    const retried = await postJson(`${rig().apiUrl}/v1/runs/${id}/retry`, {});
    expect(retried.status).toBe(202);
    expect(retried.json.status).toBe('queued');
    const done = await rig().waitForRun(
      id,
      'the retried run to succeed',
      (r) => r.status === 'succeeded',
    );
    expect(done.resumedFromStep).toBeGreaterThanOrEqual(10);
    expect(await cancels.requested([id])).toEqual([]);
    await cancels.close();
    await rig().expectCompleteMetrics(id, 3 * STEPS_PER_EPOCH);
    expect((await getJson(`${rig().apiUrl}/v1/dead-letter`)).json.items).toEqual([]);
    await worker.terminate();
  });
});
