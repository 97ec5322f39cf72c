/**
 * The memory estimate the API refuses jobs by: its counts match the built network, and its total
 * is close to what a real training child measures (peak RSS of a tiny run).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGoogLeNet } from '../../src/model/googlenet.js';
import { googLeNetSize } from '../../src/model/googlenet-size.js';
import {
  estimateEvalMemory,
  estimateTrainingMemory,
  formatBytes,
} from '../../src/model/memory-estimate.js';
import { trainJobSchema } from '../../src/queue/job-payloads.js';
import { startTrainingProcess } from '../../src/worker/training-process.js';
import { useBackend } from '../helpers/backends.js';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('googLeNetSize', () => {
  it.each([
    { numClasses: 4, inputSize: 32, width: 0.125 },
    { numClasses: 10, inputSize: 64, width: 0.25, norm: 'batchnorm' as const },
    { numClasses: 7, inputSize: 96, width: 0.5, norm: 'lrn' as const, auxLogits: false },
    { numClasses: 5, inputSize: 33, width: 0.3, channels: 1 as const },
  ])('counts the parameters of the built network: %j', (config) => {
    const model = createGoogLeNet(config);
    const size = googLeNetSize(config);
    const trainable = model.trainableWeights.reduce(
      (n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1),
      0,
    );
    expect(size.parameters).toBe(model.countParams());
    expect(size.trainableParameters).toBe(trainable);
    model.dispose();
  });
});

describe('memory estimate', () => {
  it('grows with the batch, the input and the width, and prices the finding that took a host down', () => {
    const model = { arch: 'googlenet' as const, numClasses: 10, inputSize: 32, width: 0.125 };
    const train = (m: typeof model, batchSize: number) =>
      estimateTrainingMemory({
        model: m,
        train: { batchSize, optimizer: { type: 'adam' } },
        prefetchBatches: 4,
      }).total;
    expect(train(model, 64)).toBeGreaterThan(train(model, 8));
    expect(train({ ...model, inputSize: 64 }, 8)).toBeGreaterThan(train(model, 8));
    expect(train({ ...model, width: 1 }, 8)).toBeGreaterThan(train(model, 8));
    // 512x512, batch 4096, width 4: terabytes, not something to find out by running it.
    const hostile = train({ ...model, inputSize: 512, width: 4 }, 4096);
    expect(hostile).toBeGreaterThan(2 ** 40);
    expect(formatBytes(hostile)).toMatch(/TiB$/);
    const evalOnly = estimateEvalMemory({ model, batchSize: 64 }).total;
    expect(evalOnly).toBeLessThan(train(model, 64));
  });

  it("is within 25% of a real tiny training child's peak RSS", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gq-memory-estimate-'));
    try {
      const spec = {
        model: { arch: 'googlenet' as const, numClasses: 4, inputSize: 32, width: 0.125 },
        dataset: { format: 'synthetic' as const, numClasses: 4, size: 80, seed: 3 },
        train: {
          epochs: 1,
          maxSteps: 3,
          batchSize: 16,
          optimizer: { type: 'adam' as const, learningRate: 1e-3 },
        },
      };
      const job = trainJobSchema.parse({ runId: '00000000-0000-4000-8000-000000000009', spec });
      const child = startTrainingProcess(
        {
          type: 'start',
          job,
          artifactDir: dir,
          backend: 'wasm',
          threads: 1,
          metricsEverySteps: 1,
          prefetchBatches: 2,
        },
        () => undefined,
      );
      let peak = 0;
      const sample = setInterval(() => {
        try {
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          peak = Math.max(peak, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024);
        } catch {
          // exited between two samples
        }
      }, 50);
      const outcome = await child.finished;
      clearInterval(sample);
      expect(outcome.outcome).toBe('done');
      const estimate = estimateTrainingMemory({ ...spec, prefetchBatches: 2 }).total;
      process.stdout.write(
        `[memory] tiny run: peak RSS ${formatBytes(peak)}, estimate ${formatBytes(estimate)}\n`,
      );
      expect(peak).toBeGreaterThan(0);
      expect(estimate / peak).toBeGreaterThan(0.75);
      expect(estimate / peak).toBeLessThan(1.25);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
