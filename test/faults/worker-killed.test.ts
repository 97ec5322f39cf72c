/**
 * Fault cases 1 and 2: a worker machine dies (kill -9 of the worker and its training child), and
 * only the worker's main process dies (its child must not train on as an orphan).
 */
import { describe, expect, it } from 'vitest';
import { isAlive, waitFor } from '../helpers/worker-process.js';
import {
  CHECKPOINT_EVERY,
  faultRunBody,
  useFaultRig,
  STEPS_PER_EPOCH,
  waitForKillPoint,
  reportFigures,
} from './rig.js';

const rig = useFaultRig('worker_killed');

describe('a worker dies mid-run', () => {
  it('kill -9 of the whole worker tree: another worker resumes from the last checkpoint, loses at most one interval, stores every step once', async () => {
    const a = rig().startWorker();
    const b = rig().startWorker();
    const id = await rig().submit(faultRunBody('tree-killed'));
    const running = await rig().waitForRun(id, 'the run to start', (r) => r.status === 'running');
    const owner = running.workerId?.endsWith(`-${a.pid}`) ? a : b;
    const spare = owner === a ? b : a;

    await waitForKillPoint(rig(), id, 10);
    owner.killTree();
    const killedAt = Date.now();
    await owner.exited;
    // What the dead worker had recorded: resume must start from its newest checkpoint.
    const lastStep = await rig().lastMetricStep(id);
    const checkpoint = Math.max(...(await rig().checkpointSteps(id)));

    const resumed = await rig().waitForRun(
      id,
      'the spare worker to resume the run',
      (r) => r.resumedFromStep !== null && r.workerId?.endsWith(`-${spare.pid}`) === true,
    );
    const resumeMs = Date.now() - killedAt;
    const done = await rig().waitForRun(id, 'the run to succeed', (r) => r.status === 'succeeded');
    const stepsLost = lastStep + 1 - (resumed.resumedFromStep ?? 0);
    reportFigures(
      `[fault 1] killed after step ${lastStep} (checkpoint ${checkpoint}); resumed from ` +
        `${resumed.resumedFromStep} after ${resumeMs} ms; steps lost ${stepsLost}; attempts ${done.attempts}`,
    );
    expect(resumed.resumedFromStep).toBe(checkpoint);
    // 0 when the kill came right after a checkpoint.
    expect(stepsLost).toBeGreaterThanOrEqual(0);
    expect(stepsLost).toBeLessThanOrEqual(CHECKPOINT_EVERY);
    await rig().expectCompleteMetrics(id, 3 * STEPS_PER_EPOCH);
    // Every checkpoint step once, none past the end.
    const steps = await rig().checkpointSteps(id);
    expect(new Set(steps).size).toBe(steps.length);
    expect(Math.max(...steps)).toBeLessThanOrEqual(3 * STEPS_PER_EPOCH);
    await spare.terminate();
  });

  it('kill -9 of only the worker main process: its training child exits by itself within 10 s', async () => {
    const worker = rig().startWorker();
    const id = await rig().submit(faultRunBody('orphaned', 20));
    await rig().waitForRun(id, 'the run to train', (r) => (r.progress?.step ?? 0) >= 2);
    const [child] = worker.trainingChildren();
    expect(child).toBeDefined();
    worker.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor('the orphaned child to exit', () => (isAlive(child!) ? undefined : true), 10_000);
    const exitMs = Date.now() - killedAt;
    reportFigures(`[fault 2] training child exited ${exitMs} ms after its worker was killed`);
    expect(exitMs).toBeLessThan(10_000);
    // Nothing trains the run now: its stored steps stop growing.
    const before = await rig().lastMetricStep(id);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await rig().lastMetricStep(id)).toBe(before);
  });
});
