import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainJobSchema } from '../../src/queue/job-payloads.js';
import type { TrainRunSpecInput } from '../../src/spec/train-run-spec.js';
import type { ChildMessage, MetricPointMessage } from '../../src/worker/ipc.js';
import { startTrainingProcess } from '../../src/worker/training-process.js';

const RUN_ID = '00000000-0000-4000-8000-000000000001';

function spec(overrides: Partial<TrainRunSpecInput['train']> = {}): TrainRunSpecInput {
  return {
    model: { arch: 'googlenet', numClasses: 4, inputSize: 32, width: 0.125 },
    dataset: { format: 'synthetic', numClasses: 4, size: 80, seed: 3, valFraction: 0.2 },
    train: {
      epochs: 2,
      batchSize: 8,
      optimizer: { type: 'adam', learningRate: 2e-3 },
      seed: 1,
      ...overrides,
    },
    checkpoint: { everySteps: 4, keepLatest: 2 },
  };
}

let artifacts: string;
beforeAll(async () => {
  artifacts = await mkdtemp(path.join(os.tmpdir(), 'gq-training-process-'));
});
afterAll(async () => {
  await rm(artifacts, { recursive: true, force: true });
});

describe('training child process', () => {
  it('trains a run to the end, reporting backend, progress, metrics, validation and checkpoints', async () => {
    const messages: ChildMessage[] = [];
    const job = trainJobSchema.parse({ runId: RUN_ID, spec: spec() });
    const dir = path.join(artifacts, 'runs', RUN_ID);
    const child = startTrainingProcess(
      { type: 'start', job, artifactDir: dir, backend: 'wasm', threads: 1, metricsEverySteps: 1 },
      (m) => messages.push(m),
    );
    const outcome = await child.finished;
    expect(outcome.outcome).toBe('done');

    // 64 training images / batch 8 = 8 steps per epoch, 2 epochs.
    const progress = messages.filter((m) => m.type === 'progress');
    expect(progress.map((m) => m.step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(progress.every((m) => m.totalSteps === 16)).toBe(true);
    expect(messages[0]).toMatchObject({ type: 'backend', backend: { name: 'wasm' } });

    const points: MetricPointMessage[] = messages.flatMap((m) =>
      m.type === 'metrics' ? m.points : [],
    );
    const series = (name: string): MetricPointMessage[] => points.filter((p) => p.name === name);
    expect(series('train/loss').map((p) => p.step)).toEqual(
      Array.from({ length: 16 }, (_, i) => i),
    );
    expect(series('train/lr')).toHaveLength(16);
    expect(series('train/images_per_sec').every((p) => p.value > 0)).toBe(true);
    expect(series('val/accuracy').map((p) => p.step)).toEqual([7, 15]);
    expect(series('val/top5')).toHaveLength(2);
    expect(series('train/accuracy')).toHaveLength(2);

    // Every 4 steps; 8 and 16 end an epoch, so they are saved after validation and carry its
    // score (keepBest ranks by it); mid-epoch ones carry only the training loss.
    const checkpoints = messages.filter((m) => m.type === 'checkpoint');
    expect(checkpoints.map((c) => c.step)).toEqual([4, 8, 12, 16]);
    expect(checkpoints.map((c) => 'val/accuracy' in c.metrics)).toEqual([false, true, false, true]);
    expect(checkpoints.every((c) => typeof c.metrics['train/loss'] === 'number')).toBe(true);
    const valAt8 = series('val/accuracy').find((p) => p.step === 7)?.value;
    expect(checkpoints[1]?.metrics['val/accuracy']).toBe(valAt8);
    for (const c of checkpoints) {
      expect(c.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(c.bytes).toBeGreaterThan(100_000);
      expect(await readdir(c.location)).toContain('manifest.json');
    }
    const done = messages.find((m) => m.type === 'done');
    expect(done?.type === 'done' && done.result).toMatchObject({
      steps: 16,
      epochs: 2,
      backend: 'wasm',
    });
  });

  it('refuses a batch larger than the training split before anything is enqueued', () => {
    const parsed = trainJobSchema.safeParse({ runId: RUN_ID, spec: spec({ batchSize: 128 }) });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['spec', 'train', 'batchSize']);
  });

  it('reports a backend that cannot load as an unrecoverable failure', async () => {
    const job = trainJobSchema.parse({ runId: RUN_ID, spec: spec() });
    const child = startTrainingProcess(
      // tfjs-node cannot install on our CI machines; where it can, forcing it would succeed.
      {
        type: 'start',
        job,
        artifactDir: path.join(artifacts, 'bad'),
        backend: 'tfjs-node',
        metricsEverySteps: 1,
      },
      () => undefined,
    );
    const outcome = await child.finished;
    if (outcome.outcome === 'done') return;
    expect(outcome).toMatchObject({
      outcome: 'failed',
      error: {
        name: 'BackendUnavailableError',
        unrecoverable: true,
        message: expect.stringMatching(/TRAIN_BACKEND=tfjs-node/),
      },
    });
  });

  it('stops between steps when asked, even with no checkpoint to wait for', async () => {
    const job = trainJobSchema.parse({
      runId: RUN_ID,
      spec: { ...spec({ epochs: 50 }), checkpoint: undefined },
    });
    const child: ReturnType<typeof startTrainingProcess> = startTrainingProcess(
      {
        type: 'start',
        job,
        artifactDir: path.join(artifacts, 'stop'),
        backend: 'wasm',
        threads: 1,
        metricsEverySteps: 1,
      },
      (m) => {
        if (m.type === 'progress' && m.step === 3) child.stop('cancel');
      },
    );
    const outcome = await child.finished;
    expect(outcome).toMatchObject({ outcome: 'stopped', reason: 'cancel' });
    expect(outcome.outcome === 'stopped' && outcome.step).toBeLessThan(10);
  });

  it('ends a run without a checkpoint spec with one checkpoint at its last step (the model users export)', async () => {
    const job = trainJobSchema.parse({
      runId: RUN_ID,
      spec: { ...spec({ epochs: 1 }), checkpoint: undefined },
    });
    const messages: ChildMessage[] = [];
    const child = startTrainingProcess(
      {
        type: 'start',
        job,
        artifactDir: path.join(artifacts, 'no-spec'),
        backend: 'wasm',
        threads: 1,
        metricsEverySteps: 1,
      },
      (m) => messages.push(m),
    );
    expect((await child.finished).outcome).toBe('done');
    // 64 training images in batches of 8: 8 steps.
    expect(messages.filter((m) => m.type === 'checkpoint').map((m) => m.step)).toEqual([8]);
    expect(await readdir(path.join(artifacts, 'no-spec'))).toEqual(['step-8']);
  });
});
