/**
 * The limit on failed API key lookups per client address: after AUTH_FAILURE_MAX unknown keys
 * within the window the address gets 429 (with Retry-After), whatever key it sends, on every
 * replica; other addresses are untouched; the window ends the block.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let one: TestApi;
let two: TestApi;

const LIMITS = {
  AUTH_FAILURE_MAX: 3,
  AUTH_FAILURE_WINDOW_SECONDS: 2,
  // The test's requests come from loopback: X-Forwarded-For gives each "client" its address.
  TRUST_PROXY: 'loopback',
};

beforeAll(async () => {
  db = await createTestDatabase('api_auth_failures');
  queue = await createTestQueue('api-auth-failures');
  one = await startApi(db, queue.queue, LIMITS);
  two = await startApi(db, queue.queue, LIMITS);
});
afterAll(async () => {
  await one?.close();
  await two?.close();
  await queue?.close();
  await db?.drop();
});

const from = (address: string, key: string) => ({
  authorization: `Bearer ${key}`,
  'x-forwarded-for': address,
});
const WRONG = `gq_${'0'.repeat(64)}`;

describe('failed API key lookups per address', () => {
  it('block an address after the limit, on every replica, until the window ends', async () => {
    // Two failures on one replica, one on the other: the count is shared.
    for (const api of [one, one, two]) {
      const res = await getJson(`${api.url}/v1/runs`, from('10.0.0.1', WRONG));
      expect(res.status).toBe(401);
    }
    const blocked = await getJson(`${one.url}/v1/runs`, from('10.0.0.1', one.key));
    expect(blocked.status).toBe(429);
    expect(blocked.json.detail).toMatch(/too many unknown API keys from this address/);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(blocked.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.1', one.key))).status).toBe(429);

    // Another address is not affected, nor is a good key counted as a failure.
    for (let i = 0; i < 5; i++)
      expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.2', one.key))).status).toBe(200);

    await new Promise((resolve) =>
      setTimeout(resolve, Number(blocked.headers.get('retry-after')) * 1000 + 200),
    );
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.1', one.key))).status).toBe(200);
  });

  it('does not count requests without a key (they cost no lookup)', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await getJson(`${one.url}/v1/runs`, {
        authorization: '',
        'x-forwarded-for': '10.0.0.3',
      });
      expect(res.status).toBe(401);
    }
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.3', one.key))).status).toBe(200);
  });
});
