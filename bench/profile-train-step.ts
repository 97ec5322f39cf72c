/**
 * Where a GoogLeNet training step spends its time, per kernel.
 *
 *   npm run bench:profile -- --input 224 --batch 4 --classes 1000 [--backend wasm] [--threads N]
 *                            [--top 15] [--json]
 *
 * Runs one warm-up step, then one step under tf.profile, and prints kernel time by kernel name
 * and the slowest individual calls with their shapes. Kernel times are wall-clock around each
 * kernel (tf.profile), so they include our wasm kernels' JavaScript work; the remainder up to
 * the step's wall time is autograd and op dispatch in JavaScript.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { loadConfig } from '../src/config.js';
import { syntheticBatch } from '../src/data/synthetic.js';
import { loadBackend, type BackendPreference } from '../src/model/backend.js';
import { createGoogLeNet } from '../src/model/googlenet.js';
import { createTrainer } from '../src/model/train-step.js';

const { values: args } = parseArgs({
  options: {
    input: { type: 'string', default: '224' },
    batch: { type: 'string', default: '4' },
    classes: { type: 'string', default: '1000' },
    width: { type: 'string', default: '1' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    top: { type: 'string', default: '15' },
    json: { type: 'boolean', default: false },
  },
});
const input = Number(args.input);
const batch = Number(args.batch);
const classes = Number(args.classes);
const config = loadConfig();
const loaded = await loadBackend({
  backend: (args.backend ?? config.TRAIN_BACKEND) as BackendPreference,
  ...(args.threads ? { threads: Number(args.threads) } : {}),
});

const model = createGoogLeNet({ numClasses: classes, inputSize: input, width: Number(args.width) });
const trainer = createTrainer({
  model,
  optimizer: { type: 'sgd', learningRate: 0.01, momentum: 0.9 },
  stepsPerEpoch: 100,
  totalSteps: 100,
});
const data = syntheticBatch(
  { numClasses: classes, size: batch, seed: 1, inputSize: input, channels: 3 },
  0,
  batch,
);
const images = tf.tensor4d(data.images, [batch, input, input, 3]);
const labels = tf.tensor1d(data.labels, 'int32');
trainer.trainStep(images, labels);

let stepMs = 0;
const profile = await tf.profile(() => {
  const start = performance.now();
  trainer.trainStep(images, labels);
  stepMs = performance.now() - start;
});
const byName = new Map<string, { ms: number; calls: number }>();
let kernelMs = 0;
for (const k of profile.kernels) {
  const ms = Number(k.kernelTimeMs) || 0;
  const entry = byName.get(k.name) ?? { ms: 0, calls: 0 };
  entry.ms += ms;
  entry.calls += 1;
  byName.set(k.name, entry);
  kernelMs += ms;
}
const top = Number(args.top);
const kernels = [...byName].sort((a, b) => b[1].ms - a[1].ms).map(([name, e]) => ({ name, ...e }));
const slowest = [...profile.kernels]
  .sort((a, b) => Number(b.kernelTimeMs) - Number(a.kernelTimeMs))
  .slice(0, top)
  .map((k) => ({ name: k.name, ms: Number(k.kernelTimeMs), inputShapes: k.inputShapes }));

const out = process.stdout;
out.write(
  `GoogLeNet ${input}x${input}x3, batch ${batch}, ${classes} classes on ${loaded.name} (${loaded.threads} thread(s))\n`,
);
out.write(
  `step (profiled) ${stepMs.toFixed(0)} ms, in kernels ${kernelMs.toFixed(0)} ms, ${profile.kernels.length} kernel calls\n\n`,
);
for (const k of kernels.slice(0, top)) {
  out.write(
    `${k.name.padEnd(26)} ${k.ms.toFixed(1).padStart(8)} ms ${((100 * k.ms) / kernelMs).toFixed(1).padStart(5)}%  ${k.calls} calls\n`,
  );
}
out.write('\nslowest calls:\n');
for (const k of slowest)
  out.write(
    `${k.name.padEnd(26)} ${k.ms.toFixed(1).padStart(8)} ms  ${JSON.stringify(k.inputShapes)}\n`,
  );
if (args.json)
  out.write(
    `${JSON.stringify({ backend: loaded.name, threads: loaded.threads, stepMs, kernelMs, kernels, slowest })}\n`,
  );
process.exit(0);
