/**
 * A trained run's model leaves the system: a real worker trains a tiny run, the API exports it
 * as a TensorFlow.js Layers model archive that a fresh Node process loads with plain tfjs (no
 * code of ours) and that gives the same top-1 classes as the predict endpoint.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import sharp from 'sharp';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSyntheticImage, SYNTHETIC_NORMALIZATION } from '../../src/data/synthetic.js';
import { getJson, postJson, startApi, trainBody } from '../helpers/api.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';
import { startWorker, waitFor } from '../helpers/worker.js';

/** fetch with this file's API key (export and predict need one like every /v1 route). */
function authed(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    ...init,
    headers: { authorization: `Bearer ${api.key}`, ...(init.headers as Record<string, string>) },
  });
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: ReturnType<typeof startWorker>;
let root: string;
let runId: string;
const MAX_IMAGE_BYTES = 64 * 1024;

beforeAll(async () => {
  db = await createTestDatabase('models');
  queue = await createTestQueue('models');
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-models-'));
  api = await startApi(
    db,
    queue.queue,
    {},
    {
      maxImageBytes: MAX_IMAGE_BYTES,
      scratchRoot: root,
    },
  );
  worker = startWorker({
    databaseUrl: db.url,
    queuePrefix: queue.prefix,
    scratchRoot: path.join(root, 'worker'),
  });
  // Tiny preset: 72 training images in batches of 8, 4 epochs (36 steps), a checkpoint every 9.
  const submitted = await postJson(
    `${api.url}/v1/runs`,
    trainBody({
      dataset: { format: 'synthetic', numClasses: 4, size: 80, seed: 1 },
      train: { epochs: 4, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 }, seed: 2 },
      checkpoint: { everySteps: 9, keepLatest: 2, keepBest: 1, metric: 'val/accuracy' },
    }),
  );
  runId = submitted.json.id;
  const done = await waitFor(
    'the run to finish',
    async () => {
      const run = (await getJson(`${api.url}/v1/runs/${runId}`)).json;
      return ['succeeded', 'failed'].includes(run.status) ? run : undefined;
    },
    120_000,
    () => worker.log().slice(-3000),
  );
  expect(done.status).toBe('succeeded');
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await queue?.close();
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

/** Image i of the run's data set as 32x32 RGB bytes (the normalisation undone). */
function imageBytes(i: number): Buffer {
  const spec = { numClasses: 4, size: 80, seed: 1, inputSize: 32, channels: 3 as const };
  const values = new Float32Array(32 * 32 * 3);
  renderSyntheticImage(spec, i, values, 0);
  const { mean, std } = SYNTHETIC_NORMALIZATION;
  return Buffer.from(
    Array.from(values, (v) => Math.round(Math.min(1, Math.max(0, v * std + mean)) * 255)),
  );
}

async function png(pixels: Buffer): Promise<Buffer> {
  return sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
    .png()
    .toBuffer();
}

async function postImage(body: Buffer, type = 'image/png') {
  const res = await authed(`${api.url}/v1/runs/${runId}/predict`, {
    method: 'POST',
    headers: { 'content-type': type },
    body,
  });
  // `any`: whatever JSON the answer holds; each test checks the shape it expects.
  return { status: res.status, json: (await res.json()) as any };
}

/** Unpacks a tar body into `dir`; returns the entry names. */
async function untar(body: ArrayBuffer, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  const extract = tar.extract();
  Readable.from([Buffer.from(body)]).pipe(extract);
  for await (const entry of extract) {
    const parts: Buffer[] = [];
    for await (const part of entry) parts.push(part as Buffer);
    names.push(entry.header.name);
    await writeFile(path.join(dir, path.basename(entry.header.name)), Buffer.concat(parts));
  }
  return names;
}

describe('model export and prediction', () => {
  it('exports a Layers model that plain tfjs in a fresh process loads and that agrees with predict on every image', async () => {
    const res = await authed(`${api.url}/v1/runs/${runId}/model?checkpoint=latest`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('content-disposition')).toContain(`googlenet-${runId}-step-36.tar`);
    const dir = path.join(root, 'export');
    expect((await untar(await res.arrayBuffer(), dir)).sort()).toEqual([
      'group1-shard1of1.bin',
      'model.json',
    ]);

    const images = Array.from({ length: 12 }, (_, i) => imageBytes(i));
    const predicted: string[] = [];
    for (const pixels of images) {
      const { status, json } = await postImage(await png(pixels));
      expect(status, JSON.stringify(json)).toBe(200);
      predicted.push(json.predictions[0].label);
    }
    await writeFile(path.join(root, 'pixels.bin'), Buffer.concat(images));
    const { stdout } = await promisify(execFile)(process.execPath, [
      'test/fixtures/plain-tfjs-predict.mjs',
      dir,
      path.join(root, 'pixels.bin'),
      String(images.length),
    ]);
    const plain = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    expect(plain.backend).toBe('cpu');
    expect(plain.labels).toEqual(predicted);
    // The model learned something, so agreement is not agreement on one constant class.
    expect(new Set(predicted).size).toBeGreaterThan(1);
  });

  it('predict answers the top classes with probabilities, from the best checkpoint', async () => {
    const { status, json } = await postImage(await png(imageBytes(5)));
    expect(status).toBe(200);
    const best = await db.prisma.checkpoint.findMany({ where: { runId } });
    const scored = best.filter(
      (c) => (c.metrics as Record<string, number>)['val/accuracy'] !== undefined,
    );
    const top = scored.sort(
      (a, b) =>
        (b.metrics as Record<string, number>)['val/accuracy']! -
          (a.metrics as Record<string, number>)['val/accuracy']! || b.step - a.step,
    )[0];
    expect(json.checkpoint.step).toBe(top?.step);
    expect(json.predictions).toHaveLength(4); // 4 classes: fewer than 5
    const probabilities = json.predictions.map((p: { probability: number }) => p.probability);
    expect([...probabilities].sort((a, b) => b - a)).toEqual(probabilities);
    expect(probabilities.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 4);
    expect(new Set(json.predictions.map((p: { label: string }) => p.label)).size).toBe(4);
    // JPEG and WebP (alpha and all) are read too.
    const raw = { raw: { width: 32, height: 32, channels: 3 as const } };
    const jpeg = await sharp(imageBytes(5), raw).jpeg().toBuffer();
    const webp = await sharp(imageBytes(5), raw).ensureAlpha().webp().toBuffer();
    for (const [body, type] of [
      [jpeg, 'image/jpeg'],
      [webp, 'image/webp'],
    ] as const) {
      const other = await postImage(body, type);
      expect(other.status, type).toBe(200);
      expect(other.json.predictions, type).toHaveLength(4);
    }
  });

  it('exports a chosen step, with labels and input normalisation in model.json', async () => {
    const steps = (await getJson(`${api.url}/v1/runs/${runId}/checkpoints`)).json.items.map(
      (c: { step: number }) => c.step,
    );
    const step = Math.min(...steps);
    const res = await authed(`${api.url}/v1/runs/${runId}/model?checkpoint=step:${step}`);
    expect(res.status).toBe(200);
    const dir = path.join(root, `export-${step}`);
    await untar(await res.arrayBuffer(), dir);
    const modelJson = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
    expect(modelJson.format).toBe('layers-model');
    expect(modelJson.userDefinedMetadata).toMatchObject({
      labels: ['class-0', 'class-1', 'class-2', 'class-3'],
      inputSize: 32,
      channels: 3,
      normalization: { scale: 1 / 255, mean: [0.3, 0.3, 0.3], std: [0.3, 0.3, 0.3] },
      source: { runId, checkpointStep: step },
    });
    // Main head only: no aux-head layer in the exported graph.
    const layers = modelJson.modelTopology.config.layers.map((l: { name: string }) => l.name);
    expect(layers.some((n: string) => n.startsWith('loss1') || n.startsWith('loss2'))).toBe(false);
  });

  it('refuses what it cannot serve: unknown step 404, bad selector 400, wrong type 415, not an image 422, too large 413', async () => {
    expect((await authed(`${api.url}/v1/runs/${runId}/model?checkpoint=step:99999`)).status).toBe(
      404,
    );
    expect((await authed(`${api.url}/v1/runs/${runId}/model?checkpoint=newest`)).status).toBe(400);
    expect((await postImage(Buffer.from('hello'), 'text/plain')).status).toBe(415);
    const garbage = await postImage(Buffer.from('not a png at all'));
    expect(garbage.status).toBe(422);
    expect(garbage.json.detail).toMatch(/could not be read as an image/);
    expect((await postImage(Buffer.alloc(MAX_IMAGE_BYTES + 1))).status).toBe(413);
    const unknown = '00000000-0000-4000-8000-0000000000ff';
    expect((await authed(`${api.url}/v1/runs/${unknown}/model`)).status).toBe(404);
  });
});
