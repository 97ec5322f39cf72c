/** Fault case 9: resume exactness on the wasm backend (bitwise-identical final weights). */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainJobSchema } from '../../src/queue/job-payloads.js';
import type { ChildMessage } from '../../src/worker/ipc.js';
import { startTrainingProcess } from '../../src/worker/training-process.js';

const RUN_ID = '00000000-0000-4000-8000-000000000002';
// 64 training images, batch 8: 8 steps per epoch, 16 in all; a checkpoint every 4 steps.
const job = trainJobSchema.parse({
  runId: RUN_ID,
  spec: {
    model: { arch: 'googlenet', numClasses: 4, inputSize: 32, width: 0.125 },
    dataset: { format: 'synthetic', numClasses: 4, size: 80, seed: 3, valFraction: 0.2 },
    train: {
      epochs: 2,
      batchSize: 8,
      optimizer: { type: 'sgd', learningRate: 0.05, momentum: 0.9, nesterov: true },
      seed: 5,
    },
    checkpoint: { everySteps: 4, keepLatest: 10 },
  },
});

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-resume-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function train(
  artifactDir: string,
  options: { resumeFrom?: string[]; killAfterStep?: number } = {},
) {
  const messages: ChildMessage[] = [];
  const child = startTrainingProcess(
    {
      type: 'start',
      job,
      artifactDir,
      backend: 'wasm',
      threads: 1,
      metricsEverySteps: 1,
      ...(options.resumeFrom ? { resumeFrom: options.resumeFrom } : {}),
    },
    (m) => {
      messages.push(m);
      if (
        options.killAfterStep !== undefined &&
        m.type === 'progress' &&
        m.step === options.killAfterStep
      )
        child.kill('SIGKILL');
    },
  );
  return child.finished.then((outcome) => ({ outcome, messages }));
}

describe('resuming a killed run', () => {
  it('ends with weights and optimizer state bitwise identical to an uninterrupted run, skipping a corrupt newest checkpoint', async () => {
    const straight = path.join(root, 'straight');
    const interrupted = path.join(root, 'interrupted');
    const a = await train(straight);
    expect(a.outcome.outcome).toBe('done');

    // Killed hard at step 10: checkpoints 4 and 8 exist; the run did not finish.
    const b = await train(interrupted, { killAfterStep: 10 });
    expect(b.outcome).toMatchObject({ outcome: 'crashed', signal: 'SIGKILL' });
    expect(b.messages.filter((m) => m.type === 'checkpoint').map((m) => m.step)).toEqual([4, 8]);

    // Corrupt the newest checkpoint: resume must refuse it and fall back to step 4.
    const weights8 = path.join(interrupted, 'step-8', 'weights.bin');
    const bytes = await readFile(weights8);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await writeFile(weights8, bytes);
    const c = await train(interrupted, {
      resumeFrom: [path.join(interrupted, 'step-8'), path.join(interrupted, 'step-4')],
    });
    expect(c.outcome, JSON.stringify(c.outcome)).toMatchObject({ outcome: 'done' });
    expect(c.messages.find((m) => m.type === 'checkpoint-rejected')).toMatchObject({
      location: path.join(interrupted, 'step-8'),
    });
    expect(c.messages.find((m) => m.type === 'resumed')).toMatchObject({ step: 4 });
    const progress = c.messages.filter((m) => m.type === 'progress').map((m) => m.step);
    expect(progress[0]).toBe(5);
    expect(progress.at(-1)).toBe(16);

    for (const file of ['weights.bin', 'optimizer.bin']) {
      const uninterrupted = await readFile(path.join(straight, 'step-16', file));
      const resumed = await readFile(path.join(interrupted, 'step-16', file));
      expect(resumed.equals(uninterrupted), file).toBe(true);
    }
    // Training moved the weights after step 4, so equality above is not trivial.
    const at4 = await readFile(path.join(straight, 'step-4', 'weights.bin'));
    expect(at4.equals(await readFile(path.join(straight, 'step-16', 'weights.bin')))).toBe(false);

    // The resumed run's metrics for the steps it trained are the uninterrupted run's.
    const loss = (ms: ChildMessage[]) =>
      ms
        .flatMap((m) => (m.type === 'metrics' ? m.points : []))
        .filter((p) => p.name === 'train/loss' && p.step >= 4)
        .map((p) => [p.step, p.value]);
    expect(loss(c.messages)).toEqual(loss(a.messages));
    // Epoch-level training figures too, although the resumed epoch began before the resume.
    for (const name of ['train/accuracy', 'train/top5', 'train/epoch_loss']) {
      const epochFigures = (ms: ChildMessage[]) =>
        ms
          .flatMap((m) => (m.type === 'metrics' ? m.points : []))
          .filter((p) => p.name === name)
          .map((p) => [p.step, p.value]);
      expect(epochFigures(a.messages).length, name).toBeGreaterThan(0);
      expect(epochFigures(c.messages), name).toEqual(epochFigures(a.messages));
    }
    const result = (ms: ChildMessage[]) => ms.find((m) => m.type === 'done');
    expect(result(c.messages)).toMatchObject({
      result: { steps: 16, finalLoss: expect.any(Number) },
    });
    expect((result(c.messages) as { result: { finalLoss: number } }).result.finalLoss).toBe(
      (result(a.messages) as { result: { finalLoss: number } }).result.finalLoss,
    );
  });
});
