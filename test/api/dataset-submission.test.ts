/**
 * Hostile data sets at submission (training and eval bodies): paths the file system cannot
 * follow, a `.gz` that is not gzip, split folders symlinked out of DATA_ROOT and gzip bombs are
 * refused with a 400/422 problem naming `dataset.path`; nothing is created or enqueued, no
 * resolved outside path reaches the client, and the API's event loop stays free meanwhile.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Prisma } from '../../src/db/index.js';
import { COUNTED_JOB_STATES } from '../../src/queue/job-states.js';
import { postJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { gzipBomb, idxBytes, writeImageFolder, writeMnistIdx } from '../helpers/data-files.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let dataRoot: string;
let outside: string;
/** A trained run (with a checkpoint) an eval can name: three classes. */
let trainedRunId: string;
let runsBefore: number;

beforeAll(async () => {
  db = await createTestDatabase('dataset_submission');
  queue = await createTestQueue('dataset-submission');
  dataRoot = await mkdtemp(path.join(os.tmpdir(), 'gq-ds-data-'));
  outside = await mkdtemp(path.join(os.tmpdir(), 'gq-ds-outside-'));
  await writeMnistIdx(path.join(dataRoot, 'mnist'), { trainPerClass: 2, testPerClass: 1 });
  await writeFile(path.join(dataRoot, 'somefile.idx'), 'not a folder');
  await symlink('loop', path.join(dataRoot, 'loop'));
  const notGzip = path.join(dataRoot, 'not-gzip');
  await mkdir(notGzip);
  for (const prefix of ['train', 't10k']) {
    await writeFile(path.join(notGzip, `${prefix}-images-idx3-ubyte.gz`), 'plain text, no gzip');
    await writeFile(path.join(notGzip, `${prefix}-labels-idx1-ubyte.gz`), 'plain text, no gzip');
  }
  // Split folders that lead out of DATA_ROOT, into class folders named after secrets.
  await writeImageFolder(path.join(outside, 'train'), {
    perClass: 1,
    size: 16,
    classes: ['secret-a', 'secret-b', 'secret-c'],
  });
  await mkdir(path.join(outside, 'val'));
  await mkdir(path.join(outside, 'val', 'secret-d'));
  await mkdir(path.join(dataRoot, 'escaped'));
  await symlink(path.join(outside, 'train'), path.join(dataRoot, 'escaped', 'train'));
  await symlink(path.join(outside, 'val'), path.join(dataRoot, 'escaped', 'val'));
  await writeBombIdx(path.join(dataRoot, 'bomb'), 512 * 1024 * 1024);
  await writeBombIdx(path.join(dataRoot, 'bomb-within-limits'), 10_000_000);
  api = await startApi(db, queue.queue, { DATA_ROOT: dataRoot });
  const trained = await db.prisma.run.create({
    data: {
      kind: 'train',
      status: 'succeeded',
      config: specOf(trainOn({ format: 'imagefolder', path: 'mnist' })) as Prisma.InputJsonValue,
      dataInfo: {
        classes: ['blue', 'green', 'red'],
        normalization: { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] },
        trainImages: 10,
        valImages: 2,
      },
    },
  });
  trainedRunId = trained.id;
  await db.prisma.checkpoint.create({
    data: {
      runId: trained.id,
      step: 5,
      epoch: 0,
      location: `runs/${trained.id}/step-5`,
      bytes: 100n,
      sha256: '0'.repeat(64),
    },
  });
  runsBefore = await db.prisma.run.count();
});

afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
  if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  if (outside) await rm(outside, { recursive: true, force: true });
});

afterEach(async () => {
  const counts = await queue.queue.getJobCounts(...COUNTED_JOB_STATES);
  expect(
    Object.values(counts).reduce((a, b) => a + b, 0),
    'jobs enqueued',
  ).toBe(0);
  expect(await db.prisma.run.count(), 'runs created').toBe(runsBefore);
  expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
});

/**
 * An IDX folder whose labels file is a gzip bomb: 512 MiB of zeros, in a file of about half a
 * megabyte, behind a header declaring `count` labels (as many as the images header declares).
 * With every byte declared (512 MiB) a reader that trusts the header scans them all; with
 * 10,000,000 (DATA_MAX_IMAGES) the header passes the limits and the labels must be streamed,
 * and their excess refused, while the API keeps answering.
 */
async function writeBombIdx(dir: string, count: number): Promise<void> {
  await mkdir(dir);
  const images = idxBytes([count, 1, 1], new Uint8Array(0));
  const labels = idxBytes([count], new Uint8Array(0));
  for (const prefix of ['train', 't10k']) {
    await writeFile(path.join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(images));
    await writeFile(
      path.join(dir, `${prefix}-labels-idx1-ubyte.gz`),
      Buffer.concat([gzipSync(labels), gzipBomb(512 * 1024 * 1024)]),
    );
  }
}

function trainOn(dataset: Record<string, unknown>, numClasses = 3): Record<string, unknown> {
  return {
    kind: 'train',
    model: { arch: 'googlenet', numClasses, inputSize: 32, width: 0.125 },
    dataset: { numClasses, ...dataset },
    train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.005 } },
  };
}

/** A training body as the run stores it: its spec, without `kind`. */
function specOf(body: Record<string, unknown>): Record<string, unknown> {
  const { model, dataset, train } = body;
  return { model, dataset, train };
}

function evalOn(dataset: Record<string, unknown>): Record<string, unknown> {
  return {
    kind: 'eval',
    checkpoint: { runId: trainedRunId, which: 'latest' },
    dataset: { numClasses: 3, split: 'test', ...dataset },
  };
}

/** A refusal naming `dataset.path`, as problem+json, that leaks nothing of the server. */
function expectRefused(res: Awaited<ReturnType<typeof postJson>>, status: number): void {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json.detail).toMatch(/dataset\.path/);
  const text = JSON.stringify(res.json);
  expect(text).not.toContain(outside);
  expect(text).not.toContain(os.tmpdir());
  expect(text).not.toMatch(/secret-|\bat .*\(|\.ts:\d+|node_modules|ENOTDIR|ELOOP|ENAMETOOLONG/);
}

const HOSTILE: Array<[string, Record<string, unknown>, number]> = [
  ['a very long dataset.path', { format: 'idx', path: 'a'.repeat(1000) }, 400],
  ['a path through a regular file', { format: 'idx', path: 'somefile.idx/x' }, 422],
  ['a symlink loop', { format: 'imagefolder', path: 'loop' }, 422],
  ['a symlink loop below a folder', { format: 'idx', path: 'loop/mnist' }, 422],
  ['a .gz that is not gzip', { format: 'idx', path: 'not-gzip' }, 422],
  ['split folders symlinked out of DATA_ROOT', { format: 'imagefolder', path: 'escaped' }, 400],
  ['a gzip bomb of labels', { format: 'idx', path: 'bomb' }, 422],
  ['a gzip bomb of labels within the limits', { format: 'idx', path: 'bomb-within-limits' }, 422],
];

describe('hostile data sets are refused at submission, nothing created or enqueued', () => {
  for (const [what, dataset, status] of HOSTILE) {
    it(`training: ${what} → ${status}`, async () => {
      expectRefused(await postJson(`${api.url}/v1/runs`, trainOn(dataset)), status);
    });
    it(`eval: ${what} → ${status}`, async () => {
      expectRefused(await postJson(`${api.url}/v1/runs`, evalOn(dataset)), status);
    });
  }
});

describe('the event loop stays free while a data set is checked', () => {
  it('/healthz answers within a second while gzip bombs are being checked', async () => {
    const started = Date.now();
    let pending = 2;
    const submissions = ['bomb', 'bomb-within-limits'].map((p) =>
      postJson(`${api.url}/v1/runs`, trainOn({ format: 'idx', path: p })).finally(() => pending--),
    );
    // Ask for /healthz, one after another, for as long as the submissions are being checked
    // (at least once): each must answer quickly, not when a check lets go of the loop.
    const latencies: number[] = [];
    do {
      const sent = Date.now();
      const health = await fetch(`${api.url}/healthz`);
      expect(health.status).toBe(200);
      latencies.push(Date.now() - sent);
    } while (pending > 0 && Date.now() - started < 60_000);
    for (const res of await Promise.all(submissions)) expectRefused(res, 422);
    expect(Math.max(...latencies), `healthz latencies ${latencies.join(', ')} ms`).toBeLessThan(
      1000,
    );
  });
});
