import { Worker } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { COUNTED_JOB_STATES } from '../../src/queue/job-states.js';
import { TRAINING_QUEUE } from '../../src/queue/training-queue.js';
import type { PrismaClient } from '../../src/db/index.js';
import { createTestDatabase } from '../helpers/database.js';
import { createCancelRequests } from '../../src/queue/cancel-requests.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';
import { getJson, postJson, startApi, trainBody } from '../helpers/api.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: Awaited<ReturnType<typeof startApi>>;
let prisma: PrismaClient;

beforeAll(async () => {
  db = await createTestDatabase('api_runs');
  prisma = db.prisma;
  queue = await createTestQueue('api-runs');
  api = await startApi(db, queue.queue);
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});
beforeEach(async () => {
  await queue.queue.obliterate({ force: true });
  await prisma.run.deleteMany();
});

async function jobCount(): Promise<number> {
  const counts = await queue.queue.getJobCounts(...COUNTED_JOB_STATES);
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

describe('POST /v1/runs', () => {
  it('writes the run, enqueues its job under the run id, and answers 201 queued', async () => {
    const res = await postJson(`${api.url}/v1/runs`, trainBody({ priority: 80 }));
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      id: expect.any(String),
      status: 'queued',
      kind: 'train',
      name: 'tiny',
      priority: 80,
    });
    expect(res.headers.get('location')).toBe(`/v1/runs/${res.json.id}`);
    const row = await prisma.run.findUniqueOrThrow({ where: { id: res.json.id } });
    expect(row.config).toMatchObject({
      model: { arch: 'googlenet', width: 0.125 },
      train: { batchSize: 8 },
    });
    const job = await queue.queue.getJob(res.json.id);
    expect(job?.data as unknown).toMatchObject({
      runId: res.json.id,
      spec: { dataset: { size: 64 } },
    });
    expect(job?.opts.priority).toBe(21); // higher API priority, lower BullMQ number
  });

  const badBodies: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown field', { ...trainBody(), extra: 1 }, /body: .*extra/i],
    ['a wrong kind', trainBody({ kind: 'bake' }), /body\.kind/],
    ['a missing model', { ...trainBody(), model: undefined }, /body\.model/],
    [
      'a string where a number belongs',
      trainBody({
        train: { epochs: '3', batchSize: 8, optimizer: { type: 'sgd', learningRate: 0.1 } },
      }),
      /body\.train\.epochs/,
    ],
    [
      'a negative learning rate',
      trainBody({
        train: { epochs: 1, batchSize: 8, optimizer: { type: 'sgd', learningRate: -1 } },
      }),
      /body\.train\.optimizer\.learningRate/,
    ],
    [
      'an input size too small',
      trainBody({ model: { arch: 'googlenet', numClasses: 4, inputSize: 8 } }),
      /body\.model\.inputSize/,
    ],
    [
      'class counts that disagree',
      trainBody({ dataset: { format: 'synthetic', numClasses: 5, size: 64, seed: 1 } }),
      /body\.dataset\.numClasses/,
    ],
    [
      'a batch bigger than the training split',
      trainBody({
        train: { epochs: 1, batchSize: 100, optimizer: { type: 'adam', learningRate: 0.001 } },
      }),
      /body\.train\.batchSize/,
    ],
    [
      'an unknown dataset format',
      trainBody({ dataset: { format: 'imagenet', numClasses: 4, size: 64, seed: 1 } }),
      /body\.dataset\.format/,
    ],
  ];
  for (const [what, body, field] of badBodies) {
    it(`refuses ${what} with a 400 naming the field, and creates nothing`, async () => {
      const res = await postJson(`${api.url}/v1/runs`, body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(res.json.detail).toMatch(field);
      expect(res.json.errors.length).toBeGreaterThan(0);
      expect(JSON.stringify(res.json)).not.toMatch(/at .*\.ts:\d+/); // no stack trace
      expect(await prisma.run.count()).toBe(0);
      expect(await jobCount()).toBe(0);
    });
  }

  it('refuses malformed JSON with a 400 and stays healthy', async () => {
    const res = await fetch(`${api.url}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${api.key}` },
      body: '{"kind": ',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/not valid JSON/);
    expect((await getJson(`${api.url}/healthz`)).status).toBe(200);
    expect(await prisma.run.count()).toBe(0);
  });

  it('returns the same run for the same Idempotency-Key, with one row and one job, even when requests race', async () => {
    const headers = { 'Idempotency-Key': 'submit-42' };
    const answers = await Promise.all(
      [1, 2, 3].map(() => postJson(`${api.url}/v1/runs`, trainBody(), headers)),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 201]);
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(2);
    expect(await prisma.run.count()).toBe(1);
    expect(await jobCount()).toBe(1);
    const later = await postJson(`${api.url}/v1/runs`, trainBody(), headers);
    expect(later.json.id).toBe(answers[0]?.json.id);
    const other = await postJson(`${api.url}/v1/runs`, trainBody(), {
      'Idempotency-Key': 'submit-43',
    });
    expect(other.json.id).not.toBe(answers[0]?.json.id);
  });

  it('repairs a run whose job was never added when the same key is sent again', async () => {
    const first = await postJson(`${api.url}/v1/runs`, trainBody(), {
      'Idempotency-Key': 'lost-job',
    });
    await queue.queue.remove(first.json.id); // as if the API had died between row and job
    expect(await jobCount()).toBe(0);
    const retry = await postJson(`${api.url}/v1/runs`, trainBody(), {
      'Idempotency-Key': 'lost-job',
    });
    expect(retry.json.id).toBe(first.json.id);
    expect(await jobCount()).toBe(1);
  });
});

describe('Idempotency-Key reused with another body', () => {
  it('answers 422 naming the key, creates nothing and enqueues nothing, also for another kind of run', async () => {
    const headers = { 'Idempotency-Key': 'reused-key' };
    const first = await postJson(`${api.url}/v1/runs`, trainBody(), headers);
    expect(first.status).toBe(201);
    // The same body in another key order and spacing is the same request.
    const { kind, ...rest } = trainBody();
    const again = await postJson(`${api.url}/v1/runs`, { ...rest, kind }, headers);
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(first.json.id);

    const other = await postJson(`${api.url}/v1/runs`, trainBody({ priority: 99 }), headers);
    expect(other.status, JSON.stringify(other.json)).toBe(422);
    expect(other.json.type).toBe('urn:googlenet-queue:problem:unprocessable');
    expect(other.json.detail).toMatch(/Idempotency-Key 'reused-key'/);
    expect(other.json.errors[0].path).toBe('header.idempotency-key');
    const external = await postJson(
      `${api.url}/v1/runs`,
      { kind: 'external', name: 'elsewhere' },
      headers,
    );
    expect(external.status).toBe(422);
    expect(await prisma.run.count()).toBe(1);
    expect(await jobCount()).toBe(1);
  });
});

describe('external run configs and texts', () => {
  it('keeps names and configs in any script, emoji (surrogate pairs) included', async () => {
    const res = await postJson(`${api.url}/v1/runs`, {
      kind: 'external',
      name: 'résumé 🚀 学习',
      config: { note: 'ok 😀', ключ: [1, 2, 3] },
    });
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect((await getJson(`${api.url}/v1/runs/${res.json.id}`)).json).toMatchObject({
      name: 'résumé 🚀 学习',
      config: { note: 'ok 😀', ключ: [1, 2, 3] },
    });
  });

  it('refuses a config over 64 KiB with a 400 naming body.config', async () => {
    const res = await postJson(`${api.url}/v1/runs`, {
      kind: 'external',
      name: 'big',
      config: { notes: 'x'.repeat(70 * 1024) },
    });
    expect(res.status).toBe(400);
    expect(res.json.detail).toMatch(/body\.config: .*65536/);
    expect(await prisma.run.count()).toBe(0);
  });

  it('refuses a NUL in the error of a running run it finishes with 400, and leaves it running', async () => {
    const run = await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'ext' });
    const res = await postJson(`${api.url}/v1/runs/${run.json.id}/finish`, {
      status: 'failed',
      error: 'diverged\u0000',
    });
    expect(res.status, JSON.stringify(res.json)).toBe(400);
    expect(res.json.detail).toMatch(/body\.error/);
    expect((await prisma.run.findUniqueOrThrow({ where: { id: run.json.id } })).status).toBe(
      'running',
    );
  });
});

describe('GET /v1/runs', () => {
  it('pages through every run exactly once, newest first, with a bounded limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await postJson(`${api.url}/v1/runs`, trainBody({ name: `r${i}` }))).json.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; json: any } = await getJson(
        `${api.url}/v1/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.json.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.items.map((r: { id: string }) => r.id));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect((await getJson(`${api.url}/v1/runs?limit=1000`)).status).toBe(400);
    expect((await getJson(`${api.url}/v1/runs?cursor=nonsense`)).status).toBe(400);
  });

  it("leaves each run's config out of the list (its own page has it): a page of big configs stays small", async () => {
    const config = { notes: 'n'.repeat(60 * 1024) };
    for (let i = 0; i < 5; i++)
      await postJson(`${api.url}/v1/runs`, { kind: 'external', name: `big-${i}`, config });
    const res = await fetch(`${api.url}/v1/runs?limit=100`, {
      headers: { authorization: `Bearer ${api.key}` },
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    // 5 × 60 KiB of config before; a few hundred bytes a run now.
    expect(text.length).toBeLessThan(5 * 2048);
    const items = JSON.parse(text).items as Array<Record<string, unknown>>;
    expect(items).toHaveLength(5);
    for (const item of items) expect(item).not.toHaveProperty('config');
    const one = await getJson(`${api.url}/v1/runs/${items[0]!['id']}`);
    expect(one.json.config).toEqual(config);
  });

  it('filters by status and kind', async () => {
    const a = (await postJson(`${api.url}/v1/runs`, trainBody())).json.id;
    await postJson(`${api.url}/v1/runs`, trainBody());
    await prisma.run.update({ where: { id: a }, data: { status: 'failed' } });
    const failed = await getJson(`${api.url}/v1/runs?status=failed`);
    expect(failed.json.items.map((r: { id: string }) => r.id)).toEqual([a]);
    expect((await getJson(`${api.url}/v1/runs?kind=train`)).json.items).toHaveLength(2);
    expect((await getJson(`${api.url}/v1/runs?status=exploded`)).status).toBe(400);
  });
});

describe('GET /v1/runs/:id and friends', () => {
  it('gives each run its best val/accuracy so far, in the list and alone (null when it has none)', async () => {
    const logged = (await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'best' })).json
      .id;
    const none = (await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'none' })).json.id;
    const ingested = await postJson(`${api.url}/v1/runs/${logged}/metrics`, {
      points: [
        { name: 'val/accuracy', step: 100, value: 0.5 },
        { name: 'val/accuracy', step: 200, value: 0.8 },
        { name: 'val/accuracy', step: 300, value: 0.7 },
        { name: 'train/accuracy', step: 300, value: 0.99 },
      ],
    });
    expect(ingested.status).toBe(200);
    const list = (await getJson(`${api.url}/v1/runs?kind=external`)).json.items;
    const byId = new Map(list.map((r: { id: string }) => [r.id, r]));
    expect(byId.get(logged)).toMatchObject({ bestValAccuracy: 0.8 });
    expect(byId.get(none)).toMatchObject({ bestValAccuracy: null });
    expect((await getJson(`${api.url}/v1/runs/${logged}`)).json).toMatchObject({
      bestValAccuracy: 0.8,
      latestMetrics: { 'val/accuracy': { step: 300, value: 0.7 } },
    });
  });

  it('shows a run with its latest metrics, its metric series and its checkpoints', async () => {
    const id = (await postJson(`${api.url}/v1/runs`, trainBody())).json.id;
    await prisma.metricPoint.createMany({
      data: [0, 1, 2, 3].map((step) => ({
        runId: id,
        name: 'train/loss',
        step,
        value: 2 - step * 0.25,
        wallTime: new Date(),
      })),
    });
    await prisma.checkpoint.create({
      data: { runId: id, step: 3, epoch: 0, location: '/x', bytes: 123n, sha256: 'a'.repeat(64) },
    });
    const run = await getJson(`${api.url}/v1/runs/${id}`);
    expect(run.json).toMatchObject({
      id,
      status: 'queued',
      latestMetrics: { 'train/loss': { step: 3, value: 1.25 } },
    });
    const metrics = await getJson(`${api.url}/v1/runs/${id}/metrics?names=train/loss&maxPoints=2`);
    expect(metrics.json.runId).toBe(id);
    expect(metrics.json.series[0].name).toBe('train/loss');
    expect(metrics.json.series[0].points.length).toBeLessThanOrEqual(2);
    // Bucketed: the last value with the bucket's extremes and count.
    expect(metrics.json.series[0].points.at(-1)).toMatchObject({ step: 3, value: 1.25 });
    expect(metrics.json.series[0].points.at(-1).count).toBeGreaterThanOrEqual(1);
    const all = await getJson(`${api.url}/v1/runs/${id}/metrics`);
    expect(all.json.series[0].points).toHaveLength(4);
    const checkpoints = await getJson(`${api.url}/v1/runs/${id}/checkpoints`);
    expect(checkpoints.json.items).toEqual([
      expect.objectContaining({ step: 3, bytes: 123, sha256: 'a'.repeat(64) }),
    ]);
  });

  it('answers 404 for an unknown run and 400 for a malformed id', async () => {
    expect((await getJson(`${api.url}/v1/runs/00000000-0000-4000-8000-000000000000`)).status).toBe(
      404,
    );
    const bad = await getJson(`${api.url}/v1/runs/not-a-uuid`);
    expect(bad.status).toBe(400);
    expect(bad.json.detail).toMatch(/path\.id/);
    expect((await getJson(`${api.url}/v1/nothing-here`)).status).toBe(404);
  });
});

describe('POST /v1/runs/:id/cancel', () => {
  it('cancels a queued run at once: removes its job and marks it cancelled', async () => {
    const id = (await postJson(`${api.url}/v1/runs`, trainBody())).json.id;
    const res = await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id, status: 'cancelled' });
    expect(res.json.finishedAt).not.toBeNull();
    expect(await queue.queue.getJob(id)).toBeUndefined();
    expect(await jobCount()).toBe(0);
  });

  it('refuses to cancel a finished run with 409, and an unknown one with 404', async () => {
    const id = (await postJson(`${api.url}/v1/runs`, trainBody())).json.id;
    await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    const again = await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    expect(again.status).toBe(409);
    expect(again.json.detail).toMatch(/already been cancelled/);
    const missing = await postJson(
      `${api.url}/v1/runs/00000000-0000-4000-8000-000000000000/cancel`,
      {},
    );
    expect(missing.status).toBe(404);
  });

  it('leaves a running run to its worker: 202 and a cancel request', async () => {
    const id = (await postJson(`${api.url}/v1/runs`, trainBody())).json.id;
    // Take the job the way a worker does, so it is active (locked).
    const taker = new Worker(TRAINING_QUEUE, null, {
      connection: { url: REDIS_URL },
      prefix: queue.prefix,
    });
    const job = await taker.getNextJob('test-token');
    expect(job?.id).toBe(id);
    await prisma.run.update({ where: { id }, data: { status: 'running' } });
    const res = await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    expect(res.status).toBe(202);
    expect(res.json.status).toBe('running');
    const cancels = createCancelRequests(REDIS_URL, queue.prefix);
    expect(await cancels.requested([id, '00000000-0000-4000-8000-000000000000'])).toEqual([id]);
    await cancels.close();
    await taker.close();
  });

  it('cancels at once a run left running by a dead worker whose job waits in the queue again', async () => {
    const id = (await postJson(`${api.url}/v1/runs`, trainBody())).json.id;
    await prisma.run.update({ where: { id }, data: { status: 'running' } });
    const res = await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('cancelled');
    expect(await jobCount()).toBe(0);
  });
});

describe('health and queues', () => {
  it('is ready when Redis and Postgres answer, and lists queue counts', async () => {
    expect((await getJson(`${api.url}/readyz`)).json).toEqual({
      status: 'ready',
      redis: 'ok',
      postgres: 'ok',
    });
    await postJson(`${api.url}/v1/runs`, trainBody());
    const queues = await getJson(`${api.url}/v1/queues`);
    expect(queues.json.queues[0]).toMatchObject({ name: 'training', counts: { prioritized: 1 } });
    expect(queues.json.workers).toEqual([]);
    expect(queues.json.active).toEqual([]);
  });
});
