/**
 * Input-pipeline throughput against training throughput on this machine.
 *
 *   npm run bench:data -- [--images 240] [--batch 32] [--threads 1] [--no-augment]
 *                         [--train-ips N | --no-train] [--json]
 *
 * Writes a 224x224 JPEG image folder (10 classes) to a temporary directory, then pulls
 * augmented batches (random-resized crop, flip, colour jitter) through the worker-thread
 * pipeline with 4 batches in flight, as a training run does, and prints images/s. Then it runs
 * `bench:train` at 224x224, batch 4, 1000 classes (the paper's setting) for the training figure
 * (or takes --train-ips) and prints the ratio; the pipeline must be the faster by 3x or more so
 * data never limits training. With --json the last line is
 * `{ "pipelineImagesPerSec", "threads", "augment", "trainImagesPerSec", "ratio" }`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BatchPipeline } from '../src/data/batch-pipeline.js';
import { ImageDataset } from '../src/data/image-dataset.js';
import { openImageSource } from '../src/data/open-image-source.js';
import { DEFAULT_DATA_LIMITS, writeImageFolder } from '../test/helpers/data-files.js';

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '240' },
    batch: { type: 'string', default: '32' },
    threads: { type: 'string', default: '1' },
    'no-augment': { type: 'boolean', default: false },
    'train-ips': { type: 'string' },
    'no-train': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const images = Number(args.images);
const batchSize = Number(args.batch);
const threads = Number(args.threads);
const augment = !args['no-augment'];
const size = 224;
const classes = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'];

const root = await mkdtemp(path.join(os.tmpdir(), 'gq-bench-data-'));
try {
  process.stderr.write(`writing ${images} ${size}x${size} JPEGs...\n`);
  await writeImageFolder(path.join(root, 'folder'), {
    perClass: Math.ceil(images / classes.length),
    size,
    classes,
    formats: ['jpg'],
  });
  const location = { format: 'imagefolder' as const, path: 'folder' };
  const options = {
    dataRoot: root,
    limits: DEFAULT_DATA_LIMITS,
    inputSize: size,
    channels: 3 as const,
  };
  const dataset = new ImageDataset(
    await openImageSource(location, 'train', options),
    { seed: 1, valFraction: 0 },
    options,
  );
  const pipeline = new BatchPipeline({ location, split: 'train', source: options }, threads);
  const normalization = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const augmentation = augment ? { crop: true, flip: true, jitter: 0.4 } : undefined;
  const steps = dataset.stepsPerEpoch(batchSize);
  const render = (step: number) =>
    pipeline.render(dataset.trainRequest(0, step, batchSize, augment), normalization, augmentation);
  await render(0); // warm-up: threads started, sharp loaded
  const started = performance.now();
  const inFlight = new Map<number, ReturnType<typeof render>>();
  for (let s = 0; s < steps; s++) {
    for (let ahead = s; ahead < Math.min(s + 4, steps); ahead++)
      if (!inFlight.has(ahead)) inFlight.set(ahead, render(ahead));
    await inFlight.get(s);
    inFlight.delete(s);
  }
  const seconds = (performance.now() - started) / 1000;
  await pipeline.close();
  const pipelineImagesPerSec = (steps * batchSize) / seconds;
  process.stdout.write(
    `pipeline: ${pipelineImagesPerSec.toFixed(1)} images/s (${size}x${size} JPEG, ${augment ? 'augmented' : 'plain'}, batch ${batchSize}, ${threads} thread${threads === 1 ? '' : 's'})\n`,
  );

  let trainImagesPerSec: number | null = null;
  if (args['train-ips'] !== undefined) trainImagesPerSec = Number(args['train-ips']);
  else if (!args['no-train']) {
    process.stderr.write('measuring training (bench:train, 224x224, batch 4, 1000 classes)...\n');
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/train.ts',
        '--input',
        '224',
        '--batch',
        '4',
        '--classes',
        '1000',
        '--steps',
        '3',
        '--warmup',
        '1',
        '--no-baseline',
        '--json',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const last = out.trim().split('\n').at(-1) ?? '{}';
    trainImagesPerSec = (JSON.parse(last) as { imagesPerSec: number }).imagesPerSec;
  }
  const ratio = trainImagesPerSec ? pipelineImagesPerSec / trainImagesPerSec : null;
  if (trainImagesPerSec !== null)
    process.stdout.write(
      `training: ${trainImagesPerSec.toFixed(2)} images/s (GoogLeNet 224x224, batch 4) -> pipeline is ${ratio?.toFixed(1)}x training\n`,
    );
  if (args.json)
    process.stdout.write(
      `${JSON.stringify({ pipelineImagesPerSec, threads, augment, trainImagesPerSec, ratio })}\n`,
    );
} finally {
  await rm(root, { recursive: true, force: true });
}
