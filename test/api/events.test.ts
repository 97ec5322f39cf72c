/**
 * Live run events over SSE, through Redis pub/sub: a stream opened on one API instance receives
 * what another instance ingests, and what a worker publishes from its own connection.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSseFrames } from '../../src/client/sse.js';
import { createRunEventPublisher, runEventChannel } from '../../src/queue/run-events.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { workerWrites } from '../helpers/worker-writes.js';
import { getJson, postJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';

let db: TestDatabase;
/** Checkpoint bytes of the run store (none are written here). */
let artifacts: ReturnType<typeof createPostgresArtifactStore>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let streaming: TestApi;
let ingesting: TestApi;

beforeAll(async () => {
  db = await createTestDatabase('api_events');
  artifacts = createPostgresArtifactStore(db.url);
  queue = await createTestQueue('api-events');
  // Two replicas of the API on one database and one Redis.
  streaming = await startApi(db, queue.queue);
  ingesting = await startApi(db, queue.queue);
});
afterAll(async () => {
  await artifacts?.close();
  await streaming?.close();
  await ingesting?.close();
  await queue?.close();
  await db?.drop();
});

interface Sse {
  /** Resolves with the next event of `type` that passes `match`. */
  next(type: string, match?: (data: any) => boolean): Promise<any>;
  /** The type of every event received so far. */
  readonly types: string[];
  close(): void;
}

/** Reads an event stream the way the dashboard does: fetch with the key in a header. */
async function openStream(api: TestApi, runId: string): Promise<Sse> {
  return openStreamAt(api, `/v1/runs/${runId}/events`);
}

async function openStreamAt(api: TestApi, path: string): Promise<Sse> {
  const abort = new AbortController();
  const types: string[] = [];
  const res = await fetch(`${api.url}${path}`, {
    headers: { authorization: `Bearer ${api.key}` },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: Array<{ type: string; data: any }> = [];
  const waiters: Array<() => void> = [];
  void (async () => {
    try {
      // The client's reader (src/client/sse.ts), tested on its own in test/client/sse.test.ts.
      for await (const frame of readSseFrames(res.body!)) {
        events.push({ type: frame.event, data: JSON.parse(frame.data) });
        types.push(frame.event);
        for (const w of waiters.splice(0)) w();
      }
    } catch {
      // aborted
    }
  })();
  return {
    async next(type, match = () => true) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const i = events.findIndex((e) => e.type === type && match(e.data));
        if (i >= 0) return events.splice(0, i + 1).pop()!.data;
        if (Date.now() > deadline) throw new Error(`no ${type} event within 10 s`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    types,
    close: () => abort.abort(),
  };
}

describe('GET /v1/runs/:id/events', () => {
  it('opens with the run status, then relays points and the finish ingested on another replica', async () => {
    const created = await postJson(`${ingesting.url}/v1/runs`, { kind: 'external', name: 'live' });
    const id = created.json.id as string;
    const stream = await openStream(streaming, id);
    expect(await stream.next('status')).toMatchObject({ runId: id, status: 'running' });

    await postJson(`${ingesting.url}/v1/runs/${id}/metrics`, {
      points: [
        { name: 'loss', step: 1, value: 0.9 },
        { name: 'loss', step: 2, value: 0.7 },
      ],
    });
    expect(await stream.next('metrics')).toEqual({
      type: 'metrics',
      runId: id,
      series: [
        {
          name: 'loss',
          fromStep: 1,
          toStep: 2,
          count: 2,
          last: { step: 2, value: 0.7 },
          points: [
            { step: 1, value: 0.9 },
            { step: 2, value: 0.7 },
          ],
        },
      ],
    });
    // A resent batch stores nothing and announces nothing; the finish comes next.
    await postJson(`${ingesting.url}/v1/runs/${id}/metrics`, {
      points: [{ name: 'loss', step: 2, value: 0.7 }],
    });
    await postJson(`${ingesting.url}/v1/runs/${id}/finish`, { status: 'succeeded' });
    expect(await stream.next('status', (d) => d.status !== 'running')).toMatchObject({
      status: 'succeeded',
    });
    stream.close();
  });

  it("relays a worker's status, progress, metrics and checkpoint events (published from its own connection)", async () => {
    const run = await db.prisma.run.create({ data: { kind: 'train', config: {} } });
    const stream = await openStream(streaming, run.id);
    expect(await stream.next('status')).toMatchObject({ status: 'queued' });

    const workerRedis = new Redis(REDIS_URL);
    const { store, lifecycle } = workerWrites(
      db.prisma,
      artifacts,
      queue.queue,
      createRunEventPublisher(workerRedis, queue.prefix),
    );
    try {
      const lease = (await lifecycle.claim(run.id, { workerId: 'w', attempt: 1 }))!;
      expect(await stream.next('status')).toMatchObject({ status: 'running' });
      await store.updateProgress(lease, { step: 5, totalSteps: 10, epoch: 0 });
      expect(await stream.next('progress')).toMatchObject({ step: 5, totalSteps: 10 });
      const many = Array.from({ length: 600 }, (_, step) => ({
        name: 'train/loss',
        step,
        value: 1 / (step + 1),
        time: Date.now(),
      }));
      await store.writeMetrics(lease, many);
      // A large batch is announced by its summary only.
      const big = await stream.next('metrics');
      expect(big.series[0]).toEqual({
        name: 'train/loss',
        fromStep: 0,
        toStep: 599,
        count: 600,
        last: { step: 599, value: 1 / 600 },
      });
      await store.recordCheckpoint(lease, {
        step: 5,
        epoch: 0,
        location: '/nowhere',
        bytes: 1,
        sha256: 'x',
        metrics: {},
      });
      expect(await stream.next('checkpoint')).toMatchObject({ step: 5, epoch: 0 });
      await lifecycle.succeed(lease, {
        steps: 10,
        epochs: 1,
        finalLoss: 0.1,
        valAccuracy: null,
        valTop5: null,
        imagesPerSec: 1,
        backend: 'cpu',
      });
      expect(await stream.next('status')).toMatchObject({ status: 'succeeded' });
    } finally {
      stream.close();
      await workerRedis.quit();
    }
  });

  it('leaves no subscription behind when clients leave, even while their stream is being set up', async () => {
    const created = await postJson(`${ingesting.url}/v1/runs`, { kind: 'external', name: 'left' });
    const id = created.json.id as string;
    const channel = runEventChannel(queue.prefix, id);
    // Aborted at different moments: before the answer, right after it, after the first event.
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const abort = new AbortController();
        const res = fetch(`${streaming.url}/v1/runs/${id}/events`, {
          headers: { authorization: `Bearer ${streaming.key}` },
          signal: abort.signal,
        }).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, i * 3));
        abort.abort();
        await res;
      }),
    );
    const redis = new Redis(REDIS_URL);
    try {
      await waitUntil(async () => {
        const [, subscribers] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
        return subscribers === 0;
      }, 'the subscription to go');
    } finally {
      await redis.quit();
    }
  });

  it('answers 404 for an unknown run and needs a key like every /v1 route', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await getJson(`${streaming.url}/v1/runs/${unknown}/events`)).status).toBe(404);
    const res = await fetch(`${streaming.url}/v1/runs/${unknown}/events`);
    expect(res.status).toBe(401);
  });
});

describe('GET /v1/events', () => {
  it("relays every run's status and progress from any replica, and never metric batches", async () => {
    const stream = await openStreamAt(streaming, '/v1/events');
    expect(await stream.next('ready')).toEqual({ type: 'ready' });

    const created = await postJson(`${ingesting.url}/v1/runs`, { kind: 'external', name: 'list' });
    const id = created.json.id as string;
    expect(await stream.next('status', (d) => d.runId === id)).toMatchObject({
      status: 'running',
    });
    await postJson(`${ingesting.url}/v1/runs/${id}/metrics`, {
      points: [{ name: 'loss', step: 1, value: 0.9 }],
    });

    // A worker's progress, from its own connection.
    const run = await db.prisma.run.create({ data: { kind: 'train', config: {} } });
    const workerRedis = new Redis(REDIS_URL);
    const { store, lifecycle } = workerWrites(
      db.prisma,
      artifacts,
      queue.queue,
      createRunEventPublisher(workerRedis, queue.prefix),
    );
    try {
      const lease = (await lifecycle.claim(run.id, { workerId: 'w', attempt: 1 }))!;
      expect(await stream.next('status', (d) => d.runId === run.id)).toMatchObject({
        status: 'running',
      });
      await store.updateProgress(lease, { step: 3, totalSteps: 10, epoch: 0 });
      expect(await stream.next('progress', (d) => d.runId === run.id)).toMatchObject({ step: 3 });
      await store.writeMetrics(lease, [
        { name: 'train/loss', step: 0, value: 1, time: Date.now() },
      ]);
    } finally {
      await workerRedis.quit();
    }

    await postJson(`${ingesting.url}/v1/runs/${id}/finish`, { status: 'succeeded' });
    expect(await stream.next('status', (d) => d.runId === id)).toMatchObject({
      status: 'succeeded',
    });
    // Both metric batches above were published before the finish, on the same connections.
    expect(stream.types).not.toContain('metrics');
    stream.close();
  });

  it('needs a key', async () => {
    expect((await fetch(`${streaming.url}/v1/events`)).status).toBe(401);
  });
});

async function waitUntil(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`no ${what} within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the first streams of an API process', () => {
  // The process's one subscriber connection is made by the first stream; dozens of streams
  // arriving together (a dashboard reconnecting after a deploy) once got a few 500s from it.
  it('opens 60 streams arriving at once with 200 each, on fresh processes', async () => {
    for (let round = 0; round < 3; round++) {
      const fresh = await startApi(db, queue.queue, { EVENT_STREAMS_PER_KEY: 100 });
      const aborts: AbortController[] = [];
      try {
        const created = await postJson(`${fresh.url}/v1/runs`, { kind: 'external', name: 'burst' });
        const statuses = await Promise.all(
          Array.from({ length: 60 }, async (_, i) => {
            const abort = new AbortController();
            aborts.push(abort);
            const path = i % 2 ? '/v1/events' : `/v1/runs/${created.json.id}/events`;
            const res = await fetch(`${fresh.url}${path}`, {
              headers: { authorization: `Bearer ${fresh.key}` },
              signal: abort.signal,
            });
            return res.status;
          }),
        );
        expect(statuses.filter((s) => s !== 200)).toEqual([]);
      } finally {
        for (const abort of aborts) abort.abort();
        await fresh.close();
      }
    }
  });
});
