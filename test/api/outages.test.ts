/**
 * Redis or PostgreSQL down: requests that need the missing service answer 503 with
 * `Retry-After` (application/problem+json naming what is down), at once or within the event
 * streams' subscribe timeout, never a 500 or a hang; /healthz keeps answering. Each case stops a
 * private server of this file (test/helpers/private-services.ts), so other files keep theirs.
 * The API is wired as main.ts wires it: a queue and a Redis connection without offline queue.
 */
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { TRAINING_QUEUE } from '../../src/queue/training-queue.js';
import { getJson, postJson, startApi, trainBody, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import {
  startPrivatePostgres,
  startPrivateRedis,
  type PrivateServer,
} from '../helpers/private-services.js';
import { REDIS_URL } from '../helpers/queue.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** The setting under test: how long a stream waits for its Redis subscription. */
const SUBSCRIBE_TIMEOUT_MS = 1000;

async function apiOn(label: string, redisUrl: string, pg?: PrivateServer): Promise<TestApi> {
  const db: TestDatabase = await createTestDatabase(label, pg?.url);
  cleanups.push(() => db.drop());
  const queue = new Queue(TRAINING_QUEUE, {
    connection: { url: redisUrl, enableOfflineQueue: false },
    prefix: `gq-test-${label}`,
  });
  queue.on('error', () => undefined);
  await queue.waitUntilReady();
  cleanups.push(() => queue.close());
  const api = await startApi(
    db,
    queue,
    { EVENT_SUBSCRIBE_TIMEOUT_MS: SUBSCRIBE_TIMEOUT_MS },
    { redisUrl, redisOptions: { enableOfflineQueue: false, maxRetriesPerRequest: 1 } },
  );
  cleanups.push(() => api.close());
  return api;
}

/** A GET that gives up after `ms` (a hang is a failure, not a stuck test). */
async function getWithin(
  url: string,
  key: string,
  ms: number,
): Promise<{ status: number; headers: Headers; json: any; ms: number }> {
  const started = Date.now();
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(ms),
  });
  return {
    status: res.status,
    headers: res.headers,
    json: await res.json(),
    ms: Date.now() - started,
  };
}

function expectUnavailable(res: { status: number; headers: Headers; json: any }, what: RegExp) {
  expect(res.status).toBe(503);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(res.json.type).toBe('urn:googlenet-queue:problem:unavailable');
  expect(res.json.detail).toMatch(what);
}

describe('Redis down', () => {
  it('submit, cancel, /v1/queues and both event streams answer 503 with Retry-After; /healthz answers', async () => {
    const redis = await startPrivateRedis({ persistent: false });
    cleanups.push(() => redis.stop());
    const api = await apiOn('outage_redis', redis.url);
    const created = await postJson(`${api.url}/v1/runs`, trainBody());
    expect(created.status).toBe(201);
    const id = created.json.id as string;

    await redis.stop();

    const cancel = await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    expectUnavailable(cancel, /Redis/);
    expectUnavailable(await getWithin(`${api.url}/v1/queues`, api.key, 20_000), /Redis/);
    expectUnavailable(await postJson(`${api.url}/v1/runs`, trainBody()), /queue/);
    for (const path of ['/v1/events', `/v1/runs/${id}/events`]) {
      const stream = await getWithin(`${api.url}${path}`, api.key, 20_000);
      expectUnavailable(stream, /EVENT_SUBSCRIBE_TIMEOUT_MS/);
      expect(stream.ms).toBeGreaterThanOrEqual(SUBSCRIBE_TIMEOUT_MS - 50);
    }
    expect((await getJson(`${api.url}/healthz`)).status).toBe(200);
    // Reads that need only Postgres still work.
    expect((await getJson(`${api.url}/v1/runs/${id}`)).status).toBe(200);
  });
});

describe('PostgreSQL down', () => {
  it('every authenticated request answers 503 with Retry-After, not 500; /healthz answers', async () => {
    const pg = await startPrivatePostgres();
    cleanups.push(() => pg.stop());
    const api = await apiOn('outage_pg', REDIS_URL, pg);
    expect((await getJson(`${api.url}/v1/runs`)).status).toBe(200);

    await pg.stop();

    for (const path of ['/v1/runs', '/v1/queues', '/v1/events']) {
      expectUnavailable(await getWithin(`${api.url}${path}`, api.key, 20_000), /PostgreSQL/);
    }
    expectUnavailable(await postJson(`${api.url}/v1/runs`, trainBody()), /PostgreSQL/);
    expect((await getJson(`${api.url}/healthz`)).status).toBe(200);
  });
});
