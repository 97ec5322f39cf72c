/**
 * Real data sets through the whole path: submissions are checked against DATA_ROOT (traversal
 * refused with 400, missing or mismatched data sets 422, nothing created or enqueued), a tiny
 * run trains on a PNG/JPEG/WebP image folder written with sharp, and an eval run scores its
 * checkpoint on the held-out folder through the queue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COUNTED_JOB_STATES } from '../../src/queue/job-states.js';
import type { Prisma } from '../../src/db/index.js';
import { getJson, postJson, startApi } from '../helpers/api.js';
import { createTestDatabase } from '../helpers/database.js';
import { writeImageFolder, writeMnistIdx } from '../helpers/data-files.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';
import { waitFor } from '../helpers/worker-process.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: ChildProcess | undefined;
let dataRoot: string;
let scratch: string;
let workerLog = '';

beforeAll(async () => {
  db = await createTestDatabase('eval_run');
  queue = await createTestQueue('eval-run');
  dataRoot = await mkdtemp(path.join(os.tmpdir(), 'gq-eval-data-'));
  scratch = await mkdtemp(path.join(os.tmpdir(), 'gq-eval-scratch-'));
  await writeImageFolder(path.join(dataRoot, 'colours', 'train'), { perClass: 20, size: 40 });
  await writeImageFolder(path.join(dataRoot, 'colours', 'val'), { perClass: 8, size: 40 });
  await writeMnistIdx(path.join(dataRoot, 'mnist'), { trainPerClass: 5, testPerClass: 2 });
  await symlink(os.tmpdir(), path.join(dataRoot, 'outside'));
  await mkdir(path.join(dataRoot, 'empty'));
  api = await startApi(db, queue.queue, { DATA_ROOT: dataRoot });
});

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker?.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
  }
  await api?.close();
  await queue?.close();
  await db?.drop();
  await rm(dataRoot, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      REDIS_URL,
      QUEUE_PREFIX: queue.prefix,
      SCRATCH_ROOT: scratch,
      DATA_ROOT: dataRoot,
      DATA_THREADS: '1',
      TRAIN_BACKEND: 'wasm',
      TRAIN_THREADS: '1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (workerLog += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (workerLog += d.toString()));
  return child;
}

function trainOn(dataset: Record<string, unknown>, numClasses = 3): Record<string, unknown> {
  return {
    kind: 'train',
    model: { arch: 'googlenet', numClasses, inputSize: 32, width: 0.125 },
    dataset: { numClasses, ...dataset },
    train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.005 } },
  };
}

async function nothingCreated(): Promise<void> {
  const counts = await queue.queue.getJobCounts(...COUNTED_JOB_STATES);
  expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  expect(await db.prisma.run.count()).toBe(0);
}

async function finished(id: string, timeoutMs: number): Promise<any> {
  return waitFor(
    `run ${id} to finish`,
    async () => {
      const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
      return ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
    },
    timeoutMs,
    () => workerLog.slice(-3000),
  );
}

describe('submission checks (no worker yet: nothing may reach the queue)', () => {
  it.each([
    ['../etc', 'dotdot'],
    ['colours/../../etc', 'nested dotdot'],
    ['/etc', 'absolute'],
    ['%2e%2e/etc', 'percent-encoded'],
    ['colours\0', 'NUL'],
    ['outside', 'symlink out of DATA_ROOT'],
  ])('dataset.path %j (%s) is refused with 400', async (p) => {
    const res = await postJson(`${api.url}/v1/runs`, trainOn({ format: 'imagefolder', path: p }));
    expect(res.status, JSON.stringify(res.json)).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    await nothingCreated();
  });

  it('a missing folder, a format mismatch and a wrong class count are 422', async () => {
    for (const [dataset, numClasses, why] of [
      [{ format: 'imagefolder', path: 'nope' }, 3, /does not exist/],
      [{ format: 'idx', path: 'colours' }, 3, /train-images-idx3-ubyte/],
      [{ format: 'cifar10', path: 'mnist' }, 10, /data_batch_1\.bin/],
      [{ format: 'imagefolder', path: 'empty' }, 3, /no class folders/],
      [{ format: 'imagefolder', path: 'colours' }, 4, /3 classes/],
      [{ format: 'idx', path: 'mnist' }, 5, /10 classes/],
    ] as const) {
      const res = await postJson(`${api.url}/v1/runs`, trainOn(dataset, numClasses));
      expect(res.status, JSON.stringify(res.json)).toBe(422);
      expect(res.json.detail).toMatch(why);
    }
    await nothingCreated();
  });

  it('an eval of a run or checkpoint that does not exist is 404; a missing step of a real run 422', async () => {
    const dataset = { format: 'imagefolder', path: 'colours', numClasses: 3, split: 'test' };
    const unknownRun = await postJson(`${api.url}/v1/runs`, {
      kind: 'eval',
      checkpoint: { runId: randomUUID(), which: 'latest' },
      dataset,
    });
    expect(unknownRun.status).toBe(404);
    const unknownCheckpoint = await postJson(`${api.url}/v1/runs`, {
      kind: 'eval',
      checkpoint: { checkpointId: randomUUID() },
      dataset,
    });
    expect(unknownCheckpoint.status).toBe(404);
    const run = await db.prisma.run.create({
      data: {
        kind: 'train',
        status: 'succeeded',
        config: trainOn({ format: 'imagefolder', path: 'colours' }) as Prisma.InputJsonValue,
      },
    });
    const noStep = await postJson(`${api.url}/v1/runs`, {
      kind: 'eval',
      checkpoint: { runId: run.id, which: 'step:7' },
      dataset,
    });
    expect(noStep.status, JSON.stringify(noStep.json)).toBe(422);
    const badWhich = await postJson(`${api.url}/v1/runs`, {
      kind: 'eval',
      checkpoint: { runId: run.id, which: 'newest' },
      dataset,
    });
    expect(badWhich.status).toBe(400);
    await db.prisma.run.delete({ where: { id: run.id } });
    await nothingCreated();
  });
});

describe('train on an image folder, then evaluate the checkpoint through the queue', () => {
  it('learns the three colours; the eval run reports top-1, per-class scores and the confusion matrix', async () => {
    worker = startWorker();
    const submitted = await postJson(`${api.url}/v1/runs`, {
      ...trainOn({ format: 'imagefolder', path: 'colours', valFraction: 0.2, seed: 3 }),
      train: {
        epochs: 6,
        batchSize: 8,
        optimizer: { type: 'adam', learningRate: 0.005 },
        seed: 2,
        augment: { crop: false, flip: true, jitter: 0.1 },
      },
    });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const trained = await finished(submitted.json.id, 240_000);
    expect(trained.status, JSON.stringify(trained.error)).toBe('succeeded');
    // Classes in sorted folder order, normalisation measured from the images, both stored.
    expect(trained.dataInfo.classes).toEqual(['blue', 'green', 'red']);
    expect(trained.dataInfo.normalization.mean).toHaveLength(3);
    expect(trained.dataInfo).toMatchObject({ trainImages: 48, valImages: 12 });
    const metrics = (
      await getJson(
        `${api.url}/v1/runs/${trained.id}/metrics?names=train/data_wait_ms,val/accuracy`,
      )
    ).json;
    const series = Object.fromEntries(metrics.series.map((s: any) => [s.name, s.points]));
    expect(series['train/data_wait_ms'].length).toBe(36);
    expect(series['val/accuracy'].length).toBe(6);

    const evalRes = await postJson(`${api.url}/v1/runs`, {
      kind: 'eval',
      name: 'held-out colours',
      checkpoint: { runId: trained.id, which: 'latest' },
      dataset: { format: 'imagefolder', path: 'colours', numClasses: 3, split: 'test' },
      batchSize: 8,
    });
    expect(evalRes.status, JSON.stringify(evalRes.json)).toBe(201);
    expect(evalRes.json.kind).toBe('eval');
    const evaluated = await finished(evalRes.json.id, 120_000);
    expect(evaluated.status, JSON.stringify(evaluated.error)).toBe('succeeded');
    const result = evaluated.result;
    expect(result.count).toBe(24);
    // Chance is 1/3; the colours are far apart.
    expect(result.top1).toBeGreaterThan(0.6);
    expect(result.top5).toBe(1);
    expect(result.perClass.map((c: any) => c.label)).toEqual(['blue', 'green', 'red']);
    expect(result.perClass.map((c: any) => c.count)).toEqual([8, 8, 8]);
    const matrix: number[][] = result.confusionMatrix;
    expect(matrix.flat().reduce((a, b) => a + b, 0)).toBe(24);
    const diagonal = matrix.reduce((sum, row, i) => sum + (row[i] ?? 0), 0);
    expect(diagonal / 24).toBeCloseTo(result.top1, 10);
    const evalSeries = (
      await getJson(`${api.url}/v1/runs/${evaluated.id}/metrics?names=eval/top1,eval/loss`)
    ).json.series;
    expect(evalSeries.map((s: any) => s.points.length)).toEqual([3, 3]);
    expect(evalSeries.find((s: any) => s.name === 'eval/top1').points.at(-1).value).toBeCloseTo(
      result.top1,
      10,
    );
  }, 400_000);
});
