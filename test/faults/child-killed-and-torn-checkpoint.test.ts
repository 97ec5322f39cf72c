/**
 * Fault cases 5 and 7: the training child is killed (as the OOM killer would) and is retried
 * from its checkpoint; and the newest stored checkpoint is torn (files cut short or missing), so
 * the run resumes from the one before it.
 */
import { describe, expect, it } from 'vitest';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import {
  CHECKPOINT_EVERY,
  faultRunBody,
  useFaultRig,
  STEPS_PER_EPOCH,
  waitForKillPoint,
  reportFigures,
} from './rig.js';

const rig = useFaultRig('child_killed');

describe('training crashes', () => {
  it('a killed training child is retried from its checkpoint, counting the attempt', async () => {
    const worker = rig().startWorker();
    const id = await rig().submit(faultRunBody('oom-killed'));
    await waitForKillPoint(rig(), id, 10);
    const [child] = worker.trainingChildren();
    expect(child).toBeDefined();
    process.kill(child!, 'SIGKILL');
    const killedAt = Date.now();

    const retried = await rig().waitForRun(
      id,
      'the retry to resume',
      (r) => r.attempts === 2 && r.resumedFromStep !== null && r.status === 'running',
    );
    const resumeMs = Date.now() - killedAt;
    const done = await rig().waitForRun(id, 'the run to succeed', (r) => r.status === 'succeeded');
    reportFigures(
      `[fault 5] child killed; attempt 2 resumed from step ${retried.resumedFromStep} after ${resumeMs} ms`,
    );
    expect(done.attempts).toBe(2);
    expect(retried.resumedFromStep).toBeGreaterThanOrEqual(10);
    expect(retried.resumedFromStep! % CHECKPOINT_EVERY).toBe(0);
    await rig().expectCompleteMetrics(id, 3 * STEPS_PER_EPOCH);
    await worker.terminate();
  });

  it('a torn newest checkpoint is refused (and forgotten); the run resumes from the previous one', async () => {
    const first = rig().startWorker();
    const id = await rig().submit(faultRunBody('torn'));
    await waitForKillPoint(rig(), id, 15);
    first.killTree();
    await first.exited;

    const rows = await rig().db.prisma.checkpoint.findMany({
      where: { runId: id },
      orderBy: { step: 'desc' },
    });
    const [newest, previous] = rows;
    expect(previous).toBeDefined();
    // What a crash between uploading its files leaves in the artifact store (or a partial loss
    // of it): the weights cut short, the optimizer state missing.
    const store = createPostgresArtifactStore(rig().db.url);
    try {
      await store.put(`${newest!.location}/weights.bin`, [new Uint8Array(100)]);
      expect(await store.delete(`${newest!.location}/optimizer.bin`)).toBe(1);
    } finally {
      await store.close();
    }

    const second = rig().startWorker();
    const resumed = await rig().waitForRun(
      id,
      'the resume',
      (r) => r.resumedFromStep !== null,
      60_000,
    );
    const done = await rig().waitForRun(id, 'the run to succeed', (r) => r.status === 'succeeded');
    reportFigures(
      `[fault 7] newest checkpoint ${newest!.step} torn; resumed from ${resumed.resumedFromStep}`,
    );
    expect(resumed.resumedFromStep).toBe(previous!.step);
    expect(done.status).toBe('succeeded');
    await rig().expectCompleteMetrics(id, 3 * STEPS_PER_EPOCH);
    expect(second.log()).toMatch(/checkpoint not usable/);
    const steps = await rig().checkpointSteps(id);
    expect(new Set(steps).size).toBe(steps.length);
    await second.terminate();
  });
});
