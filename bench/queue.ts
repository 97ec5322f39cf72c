/**
 * What the queue costs: latency from POST to the first training step, and training throughput
 * through API → BullMQ → worker → child process against the same model trained in-process.
 *
 *   npm run bench:queue -- [--runs 5] [--epochs 3] [--width 0.25] [--input 32] [--batch 32]
 *                          [--size 512] [--threads 1] [--json]
 *
 * Makes a scratch database and queue prefix on DATABASE_URL / REDIS_URL, starts the API in this
 * process and one worker process, submits --runs runs one after another and waits for each.
 * Per run: pickup = startedAt - createdAt; first step = wall time of the first train/loss point
 * - createdAt (includes starting the child, loading the backend, building the model and one
 * step). Throughput: each run's median per-step train/images_per_sec against the same training
 * done in this process right after it (same backend, threads, data order and epochs); the
 * overhead is the median of those paired ratios.
 * Everything is removed afterwards.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp } from '../src/api/app.js';
import { createApiKeyStore } from '../src/api/auth/api-key-store.js';
import { createRunModelsService } from '../src/api/models/run-models.service.js';
import { createPostgresArtifactStore } from '../src/artifacts/postgres-artifact-store.js';
import { createCancelRequests } from '../src/queue/cancel-requests.js';
import { loadConfig } from '../src/config.js';
import { SyntheticDataset } from '../src/data/synthetic-dataset.js';
import { createDatabase, dropDatabase, withDatabase } from '../src/db/databases.js';
import { createPrismaClient, migrateDatabase } from '../src/db/index.js';
import { TRAINING_QUEUE } from '../src/queue/training-queue.js';
import { loadBackend } from '../src/model/backend.js';
import { createGoogLeNet } from '../src/model/googlenet.js';
import { createTrainer } from '../src/model/train-step.js';
import { median } from './stats.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    epochs: { type: 'string', default: '3' },
    width: { type: 'string', default: '0.25' },
    input: { type: 'string', default: '32' },
    batch: { type: 'string', default: '32' },
    size: { type: 'string', default: '512' },
    threads: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const threads = Number(args.threads);
const model = {
  arch: 'googlenet',
  numClasses: 10,
  inputSize: Number(args.input),
  width: Number(args.width),
} as const;
const dataset = { format: 'synthetic', numClasses: 10, size: Number(args.size), seed: 7 } as const;
const train = {
  epochs: Number(args.epochs),
  batchSize: Number(args.batch),
  optimizer: { type: 'adam', learningRate: 0.002 },
  seed: 1,
} as const;

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const config = loadConfig();
const name = `gq_bench_${randomBytes(4).toString('hex')}`;
const url = withDatabase(config.DATABASE_URL, name);
const prefix = `gq-bench-${randomBytes(4).toString('hex')}`;
const artifacts = await mkdtemp(path.join(os.tmpdir(), 'gq-bench-'));
await createDatabase(config.DATABASE_URL, name);
await migrateDatabase(url);
const prisma = createPrismaClient(url);
const queue = new Queue(TRAINING_QUEUE, { connection: { url: config.REDIS_URL }, prefix });
const cancels = createCancelRequests(config.REDIS_URL, prefix);
const redis = new Redis(config.REDIS_URL);
const apiKeys = createApiKeyStore(prisma);
const { key: apiKey } = await apiKeys.create({ name: 'bench', scopes: ['admin'] });
const logger = pino({ level: 'silent' });
const models = createRunModelsService({
  prisma,
  artifacts: createPostgresArtifactStore(url),
  config: { ...config, SCRATCH_ROOT: artifacts },
  logger,
});
const server = createApp({
  prisma,
  queue,
  cancels,
  redis,
  apiKeys,
  // The benchmark submits as fast as it can: no rate limit.
  config: { ...config, QUEUE_PREFIX: prefix, RATE_LIMIT_MAX: 0 },
  logger,
  models,
  maxImageBytes: config.PREDICT_MAX_BYTES,
}).listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const worker = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
  env: {
    ...process.env,
    DATABASE_URL: url,
    QUEUE_PREFIX: prefix,
    SCRATCH_ROOT: artifacts,
    TRAIN_BACKEND: 'wasm',
    TRAIN_THREADS: String(threads),
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});

/**
 * The same configuration trained in this process with the same backend, threads, data order and
 * epochs: median per-step images/s (first step excluded, as in the queue runs).
 */
async function inProcessRate(): Promise<number> {
  await loadBackend({ backend: 'wasm', threads });
  const data = new SyntheticDataset(
    { ...dataset, valFraction: 0.1 },
    { inputSize: model.inputSize, channels: 3 },
  );
  const stepsPerEpoch = data.stepsPerEpoch(train.batchSize);
  const net = createGoogLeNet({
    numClasses: 10,
    inputSize: model.inputSize,
    width: model.width,
    seed: 1,
  });
  const trainer = createTrainer({
    model: net,
    optimizer: train.optimizer,
    stepsPerEpoch,
    totalSteps: 1000,
    seed: 1,
  });
  const rates: number[] = [];
  for (let step = 0; step < stepsPerEpoch * train.epochs; step++) {
    const b = data.trainBatch(
      Math.floor(step / stepsPerEpoch),
      step % stepsPerEpoch,
      train.batchSize,
    );
    const images = tf.tensor4d(b.images, [b.count, model.inputSize, model.inputSize, 3]);
    const labels = tf.tensor1d(b.labels, 'int32');
    const t0 = performance.now();
    trainer.trainStep(images, labels);
    const seconds = (performance.now() - t0) / 1000;
    tf.dispose([images, labels]);
    if (step > 0) rates.push(train.batchSize / seconds);
  }
  trainer.dispose();
  net.dispose();
  return median(rates);
}

const pickups: number[] = [];
const localRuns: number[] = [];
const firstSteps: number[] = [];
const queueRates: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const res = await fetch(`${api}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ kind: 'train', name: `bench-${i}`, model, dataset, train }),
    });
    const { id } = (await res.json()) as { id: string };
    for (;;) {
      const run = await prisma.run.findUniqueOrThrow({ where: { id } });
      if (run.status === 'failed') throw new Error(`run failed: ${JSON.stringify(run.error)}`);
      if (run.status === 'succeeded') {
        const first = await prisma.metricPoint.findFirstOrThrow({
          where: { runId: id, name: 'train/loss' },
          orderBy: { step: 'asc' },
        });
        const rates = await prisma.metricPoint.findMany({
          where: { runId: id, name: 'train/images_per_sec' },
        });
        pickups.push((run.startedAt?.getTime() ?? 0) - run.createdAt.getTime());
        firstSteps.push(first.wallTime.getTime() - run.createdAt.getTime());
        // The first step includes the backend's warm-up; bench:train skips warm-up steps too.
        queueRates.push(median(rates.filter((r) => r.step > 0).map((r) => r.value)));
        // Right after each queue run, the same training in this process: the machine's speed
        // drifts by tens of percent between minutes, so only neighbouring measurements compare.
        localRuns.push(await inProcessRate());
        out(
          `run ${i + 1}/${runs}: pickup ${pickups.at(-1)} ms, first step done ${firstSteps.at(-1)} ms after POST, ` +
            `${queueRates.at(-1)?.toFixed(1)} images/s through the queue, ${localRuns.at(-1)?.toFixed(1)} in-process`,
        );
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
} finally {
  worker.kill('SIGTERM');
  await new Promise((resolve) => worker.once('exit', resolve));
  server.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await cancels.close();
  await redis.quit();
  await prisma.$disconnect();
  await dropDatabase(config.DATABASE_URL, name);
  await rm(artifacts, { recursive: true, force: true });
}

const result = {
  runs,
  pickupMsMedian: median(pickups),
  firstStepMsMedian: median(firstSteps),
  queueImagesPerSec: median(queueRates),
  inProcessImagesPerSec: median(localRuns),
  /** Median over runs of 1 - queue/in-process for each neighbouring pair. */
  overhead: median(queueRates.map((q, i) => 1 - q / (localRuns[i] as number))),
  config: { model, dataset, train, threads },
};
out(`POST -> picked up by the worker: median ${result.pickupMsMedian} ms over ${runs} runs`);
out(`POST -> first training step done: median ${result.firstStepMsMedian} ms`);
out(
  `training through the queue: ${result.queueImagesPerSec.toFixed(1)} images/s (runs ${Math.min(...queueRates).toFixed(0)}-${Math.max(...queueRates).toFixed(0)}); ` +
    `in-process: ${result.inProcessImagesPerSec.toFixed(1)} images/s (${Math.min(...localRuns).toFixed(0)}-${Math.max(...localRuns).toFixed(0)}); ` +
    `overhead ${(100 * result.overhead).toFixed(1)}%`,
);
if (args.json) out(JSON.stringify(result));
process.exit(0);
