/**
 * Training throughput of GoogLeNet on this machine.
 *
 *   npm run bench:train -- --input 32 --batch 32 --classes 10 --steps 10 [--backend wasm]
 *                          [--threads N] [--width 1] [--warmup 2] [--no-baseline] [--json]
 *
 * Prints images/s (median step time over --steps steps after --warmup steps), the backend and
 * its threads. Where `/usr/bin/python3 -c "import torch"` works, then runs the same network,
 * batch and optimizer in PyTorch (bench/pytorch_googlenet.py) on the same machine — one after
 * the other, never both at once — and prints the ratio. With --json the last line is
 * `{ "imagesPerSec", "backend", "threads", ..., "pytorch": {...} | null, "ratio" }`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { loadConfig } from '../src/config.js';
import { syntheticBatch } from '../src/data/synthetic.js';
import { BACKEND_NAMES, loadBackend, type BackendPreference } from '../src/model/backend.js';
import { createGoogLeNet } from '../src/model/googlenet.js';
import { createTrainer } from '../src/model/train-step.js';
import { median } from './stats.js';

const { values: args } = parseArgs({
  options: {
    input: { type: 'string', default: '32' },
    batch: { type: 'string', default: '32' },
    classes: { type: 'string', default: '10' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    width: { type: 'string', default: '1' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

function intArg(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}, got ${value}\n`);
    process.exit(2);
  }
  return n;
}

const input = intArg('input', args.input, 32);
const batch = intArg('batch', args.batch, 1);
const classes = intArg('classes', args.classes, 2);
const steps = intArg('steps', args.steps, 1);
const warmup = intArg('warmup', args.warmup, 0);
const width = Number(args.width);
const config = loadConfig();
// --backend wins over TRAIN_BACKEND, which wins over auto.
const backendArg = (args.backend ?? config.TRAIN_BACKEND) as BackendPreference;
if (backendArg !== 'auto' && !BACKEND_NAMES.includes(backendArg)) {
  process.stderr.write(`--backend must be one of auto, ${BACKEND_NAMES.join(', ')}\n`);
  process.exit(2);
}

const loaded = await loadBackend({
  backend: backendArg,
  ...(args.threads !== undefined
    ? { threads: intArg('threads', args.threads, 1) }
    : config.TRAIN_THREADS !== undefined
      ? { threads: config.TRAIN_THREADS }
      : {}),
});
const model = createGoogLeNet({ numClasses: classes, inputSize: input, width });
const trainer = createTrainer({
  model,
  optimizer: { type: 'sgd', learningRate: 0.01, momentum: 0.9 },
  stepsPerEpoch: 100,
  totalSteps: warmup + steps,
});
const data = syntheticBatch(
  { numClasses: classes, size: batch, seed: 1, inputSize: input, channels: 3 },
  0,
  batch,
);
const images = tf.tensor4d(data.images, [batch, input, input, 3]);
const labels = tf.tensor1d(data.labels, 'int32');

const times: number[] = [];
for (let i = 0; i < warmup + steps; i++) {
  const start = performance.now();
  trainer.trainStep(images, labels); // reads the loss back, so the step has really finished
  const ms = performance.now() - start;
  if (i >= warmup) times.push(ms);
  if (!args.json)
    process.stdout.write(
      `step ${i + 1}/${warmup + steps}${i < warmup ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms\n`,
    );
}
const stepMs = median(times);
const imagesPerSec = (batch / stepMs) * 1000;
const setup = { input, batch, classes, width, steps, warmup, params: model.countParams() };
tf.dispose([images, labels]);

interface Baseline {
  imagesPerSec: number;
  threads: number;
  torch: string;
  params: number;
}

function runPyTorch(): Baseline | null {
  if (args['no-baseline'] || width !== 1) return null;
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    return null;
  }
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pytorch_googlenet.py');
  const out = execFileSync(
    '/usr/bin/python3',
    [
      script,
      '--input',
      String(input),
      '--batch',
      String(batch),
      '--classes',
      String(classes),
      '--steps',
      String(steps),
      '--warmup',
      String(warmup),
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').pop() ?? 'null') as Baseline;
}

const pytorch = runPyTorch();
const ratio = pytorch ? imagesPerSec / pytorch.imagesPerSec : null;
const result = {
  imagesPerSec,
  stepMs,
  backend: loaded.name,
  threads: loaded.threads,
  ...setup,
  pytorch,
  ratio,
};

process.stdout.write(
  `GoogLeNet ${input}x${input}x3, batch ${batch}, ${classes} classes, width ${width}: ` +
    `${imagesPerSec.toFixed(1)} images/s (median step ${stepMs.toFixed(0)} ms) on ${loaded.name}, ${loaded.threads} thread(s)\n`,
);
if (pytorch) {
  process.stdout.write(
    `PyTorch ${pytorch.torch} CPU, ${pytorch.threads} thread(s), same network: ${pytorch.imagesPerSec.toFixed(1)} images/s; ` +
      `ratio ${ratio?.toFixed(3)}x\n`,
  );
} else {
  process.stdout.write(
    'PyTorch baseline: not run (needs /usr/bin/python3 with torch, width 1, no --no-baseline)\n',
  );
}
if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
// The wasm backend's pthread workers would keep the process alive.
process.exit(0);
