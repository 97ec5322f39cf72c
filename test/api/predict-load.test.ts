/**
 * Predict under heavy and hostile use: inference at a large input runs off the API's event loop
 * (a concurrent /healthz answers while predictions compute), a full predict queue answers 503
 * with Retry-After naming its limit, and images are recognised by their bytes, not by the
 * Content-Type the client claims.
 *
 * The run's checkpoint is written here (an untrained 512x512 GoogLeNet), not trained by a
 * worker: what is under test is the API's handling of a heavy model, not training.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { saveCheckpoint } from '../../src/checkpoints/checkpoint.js';
import { createCheckpointSync } from '../../src/checkpoints/checkpoint-sync.js';
import { createGoogLeNet } from '../../src/model/googlenet.js';
import { createTrainer } from '../../src/model/train-step.js';
import { trainRunSpecSchema } from '../../src/spec/train-run-spec.js';
import { postJson, startApi, trainBody, type TestApi } from '../helpers/api.js';
import { useBackend } from '../helpers/backends.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let root: string;
/** Default settings: one predict thread. */
let api: TestApi;
/** One thread and a queue of one: the third request at once is refused. */
let tight: TestApi;
let runId: string;

const INPUT_SIZE = 512;

/** Submits a training run (left queued: no worker) and stores an untrained checkpoint of it. */
async function runWithCheckpoint(): Promise<string> {
  const body = trainBody({
    model: { arch: 'googlenet', numClasses: 4, inputSize: INPUT_SIZE, width: 1 },
  });
  const created = await postJson(`${api.url}/v1/runs`, body);
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  const id = created.json.id as string;
  const run = await db.prisma.run.findUniqueOrThrow({ where: { id } });
  const spec = trainRunSpecSchema.parse(run.config);
  const model = createGoogLeNet({
    numClasses: spec.model.numClasses,
    inputSize: spec.model.inputSize,
    channels: spec.model.channels,
    width: spec.model.width,
    auxLogits: spec.model.auxLogits,
    norm: spec.model.norm,
    seed: 3,
  });
  const trainer = createTrainer({
    model,
    optimizer: { type: 'adam', learningRate: 0.01 },
    stepsPerEpoch: 1,
    totalSteps: 1,
  });
  const artifacts = createPostgresArtifactStore(db.url);
  try {
    const sync = createCheckpointSync({ artifacts, scratchRoot: path.join(root, 'writer') });
    const saved = await saveCheckpoint(path.join(sync.writeDir(id), 'step-1'), {
      model,
      optimizer: trainer.optimizer.getState(),
      state: { step: 1, epoch: 0 },
    });
    const location = await sync.upload(id, { ...saved, step: 1 });
    await db.prisma.checkpoint.create({
      data: {
        runId: id,
        step: 1,
        epoch: 0,
        location,
        bytes: BigInt(saved.bytes),
        sha256: saved.sha256,
      },
    });
  } finally {
    model.dispose();
    await artifacts.close();
  }
  return id;
}

beforeAll(async () => {
  await useBackend('cpu');
  db = await createTestDatabase('predict_load');
  queue = await createTestQueue('predict-load');
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-predict-load-'));
  // Scratch directories that do not exist yet: the API makes them.
  api = await startApi(db, queue.queue, {}, { scratchRoot: path.join(root, 'api') });
  tight = await startApi(
    db,
    queue.queue,
    {},
    { scratchRoot: path.join(root, 'tight'), predictThreads: 1, predictQueueLength: 1 },
  );
  runId = await runWithCheckpoint();
}, 120_000);

afterAll(async () => {
  await api?.close();
  await tight?.close();
  await queue?.close();
  await db?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** A noisy RGB PNG of `size`², large enough that decoding it is real work. */
async function noisyPng(size: number): Promise<Buffer> {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
}

async function predict(base: TestApi, body: Buffer, type = 'image/png', signal?: AbortSignal) {
  const res = await fetch(`${base.url}/v1/runs/${runId}/predict`, {
    method: 'POST',
    headers: { authorization: `Bearer ${base.key}`, 'content-type': type },
    body,
    ...(signal ? { signal } : {}),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

describe('predict under load', () => {
  it('answers /healthz while predictions at a large input compute', async () => {
    const image = await noisyPng(1024);
    // Warm: the model is loaded (and the first inference done) before anything is timed.
    const warm = await predict(api, image);
    expect(warm.status, JSON.stringify(warm.json)).toBe(200);

    const started = Date.now();
    let firstPredictAt: number | undefined;
    const predictions = Array.from({ length: 4 }, () =>
      predict(api, image).then((r) => {
        firstPredictAt ??= Date.now();
        return r;
      }),
    );
    // Let the predictions reach their compute before asking.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const asked = Date.now();
    const health = await fetch(`${api.url}/healthz`);
    const answered = Date.now();
    expect(health.status).toBe(200);
    const results = await Promise.all(predictions);
    const predictMs = Date.now() - started;
    console.log(
      `healthz ${answered - asked} ms during 4 predicts at ${INPUT_SIZE}x${INPUT_SIZE} ` +
        `(all done after ${predictMs} ms)`,
    );
    for (const r of results) expect(r.status, JSON.stringify(r.json)).toBe(200);
    // Behaviour first: /healthz did not wait for a prediction to finish.
    expect(firstPredictAt === undefined || answered <= firstPredictAt).toBe(true);
    // And a generous bound on the wait itself (a loaded 2-core machine).
    expect(answered - asked).toBeLessThan(1000);
  }, 120_000);

  it('refuses predictions past the queue limit with 503 and Retry-After naming it', async () => {
    const image = await noisyPng(256);
    const warm = await predict(tight, image);
    expect(warm.status, JSON.stringify(warm.json)).toBe(200);
    const results = await Promise.all(Array.from({ length: 6 }, () => predict(tight, image)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    const refused = results.filter((r) => r.status === 503);
    expect(refused.length, statuses.join(',')).toBeGreaterThanOrEqual(1);
    for (const r of refused) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(r.json.detail).toMatch(/PREDICT_QUEUE_LENGTH/);
    }
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    // The pool is not worse for it: the next prediction is served.
    expect((await predict(tight, image)).status).toBe(200);
  }, 120_000);

  it('frees the place in the queue of a client that went away', async () => {
    const image = await noisyPng(256);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const running = predict(tight, image);
    await sleep(300);
    const leaving = new AbortController();
    const left = predict(tight, image, 'image/png', leaving.signal).catch((e: unknown) => e);
    await sleep(300);
    leaving.abort();
    expect(await left).toBeInstanceOf(Error);
    await sleep(100);
    // Its place is free again: the next request waits in it instead of being refused.
    const next = await predict(tight, image);
    expect(next.status, JSON.stringify(next.json)).toBe(200);
    expect((await running).status).toBe(200);
  }, 120_000);

  it('refuses TIFF, GIF and SVG bytes whatever the Content-Type says', async () => {
    const raw = { raw: { width: 16, height: 16, channels: 3 as const } };
    const pixels = Buffer.alloc(16 * 16 * 3, 128);
    const tiff = await sharp(pixels, raw).tiff().toBuffer();
    const gif = await sharp(pixels, raw).gif().toBuffer();
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16">' +
        '<rect width="16" height="16" fill="red"/></svg>',
    );
    for (const [name, body] of [
      ['TIFF', tiff],
      ['GIF', gif],
      ['SVG', svg],
    ] as const) {
      for (const type of ['image/png', 'image/jpeg', 'image/webp']) {
        const r = await predict(api, body, type);
        expect(r.status, `${name} as ${type}: ${JSON.stringify(r.json)}`).toBe(415);
        expect(r.json.detail, name).toMatch(/JPEG, PNG or WebP/);
      }
    }
    // Each known format is named by what it is.
    expect((await predict(api, tiff)).json.detail).toMatch(/TIFF/);
    expect((await predict(api, gif)).json.detail).toMatch(/GIF/);
    // A real PNG sent as image/jpeg is still a PNG: read by its bytes.
    expect((await predict(api, await noisyPng(64), 'image/jpeg')).status).toBe(200);
  }, 120_000);
});
