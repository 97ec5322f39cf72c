/**
 * A training job must fit in the memory a worker gives one job: its estimate against the largest
 * share a live worker announced, or JOB_MEMORY_CAP_BYTES while none is live. A job that fits
 * nowhere gets 422 naming the estimate and the budget; nothing is created or enqueued.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { COUNTED_JOB_STATES } from '../../src/queue/job-states.js';
import { postJson, startApi, trainBody, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
const MiB = 2 ** 20;

beforeAll(async () => {
  db = await createTestDatabase('api_memory_budget');
  queue = await createTestQueue('api-memory-budget');
  api = await startApi(db, queue.queue);
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});
afterEach(async () => {
  await db.prisma.worker.deleteMany();
  await db.prisma.run.deleteMany();
  await queue.queue.obliterate({ force: true });
});

/** The finding: 512x512 input, batch 4096, width 4. */
const hostile = trainBody({
  model: { arch: 'googlenet', numClasses: 4, inputSize: 512, width: 4 },
  dataset: { format: 'synthetic', numClasses: 4, size: 5000, seed: 1, valFraction: 0.1 },
  train: { epochs: 1, batchSize: 4096, optimizer: { type: 'adam', learningRate: 0.002 } },
});
/** About 650 MiB by the estimate; the tiny body is about 200 MiB. */
const medium = trainBody({
  model: { arch: 'googlenet', numClasses: 4, inputSize: 64, width: 0.5 },
  dataset: { format: 'synthetic', numClasses: 4, size: 64, seed: 1 },
  train: { epochs: 1, batchSize: 32, optimizer: { type: 'adam', learningRate: 0.002 } },
});

async function registerWorker(id: string, jobMemoryBytes: number, lastSeenAt = new Date()) {
  await db.prisma.worker.create({
    data: {
      id,
      host: 'test',
      backend: 'wasm',
      devices: { slots: 'cpu:0', cpus: 2, memoryBytes: jobMemoryBytes, jobMemoryBytes },
      lastSeenAt,
    },
  });
}

async function jobsAndRuns(): Promise<number> {
  const counts = await queue.queue.getJobCounts(...COUNTED_JOB_STATES);
  return Object.values(counts).reduce((a, b) => a + b, 0) + (await db.prisma.run.count());
}

describe('job memory budget', () => {
  it('refuses 512x512, batch 4096, width 4 with 422 naming the estimate and the default cap when no worker is registered', async () => {
    const res = await postJson(`${api.url}/v1/runs`, hostile);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(res.json.detail).toMatch(/estimated to need [\d.]+ TiB of memory/);
    expect(res.json.detail).toContain('16.0 GiB');
    expect(res.json.detail).toContain('JOB_MEMORY_CAP_BYTES');
    expect(res.json.errors).toEqual([
      { path: 'body.train.batchSize', message: expect.any(String) },
    ]);
    expect(await jobsAndRuns()).toBe(0);
  });

  it("measures a job against the largest live worker's share, ignoring workers not seen for minutes", async () => {
    await registerWorker('small', 300 * MiB);
    await registerWorker('gone-big', 64 * 1024 * MiB, new Date(Date.now() - 10 * 60_000));
    expect((await postJson(`${api.url}/v1/runs`, trainBody())).status).toBe(201);
    const refused = await postJson(`${api.url}/v1/runs`, medium);
    expect(refused.status).toBe(422);
    expect(refused.json.detail).toContain('300 MiB');
    expect(refused.json.detail).toContain('WORKER_MEMORY_BYTES');
    await registerWorker('big', 2048 * MiB);
    expect((await postJson(`${api.url}/v1/runs`, medium)).status).toBe(201);
    expect((await postJson(`${api.url}/v1/runs`, hostile)).status).toBe(422);
  });

  it('refuses an eval whose batch cannot fit either, naming body.batchSize', async () => {
    // A trained run of a large network (rows only: the check reads no files).
    const trained = await db.prisma.run.create({
      data: {
        kind: 'train',
        status: 'succeeded',
        config: {
          model: { arch: 'googlenet', numClasses: 4, inputSize: 512, width: 4 },
          dataset: { format: 'synthetic', numClasses: 4, size: 64, seed: 1 },
          train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
        },
      },
    });
    await db.prisma.checkpoint.create({
      data: { runId: trained.id, step: 8, epoch: 0, location: 'x', bytes: 1, sha256: 'x' },
    });
    const evalBody = (batchSize: number) => ({
      kind: 'eval',
      checkpoint: { runId: trained.id, which: 'latest' },
      dataset: { format: 'synthetic', numClasses: 4, size: 64, seed: 1 },
      batchSize,
    });
    const refused = await postJson(`${api.url}/v1/runs`, evalBody(4096));
    expect(refused.status).toBe(422);
    expect(refused.json.errors[0].path).toBe('body.batchSize');
    expect(refused.json.detail).toMatch(/estimated to need .* of memory/);
    expect((await postJson(`${api.url}/v1/runs`, evalBody(1))).status).toBe(201);
  });
});
