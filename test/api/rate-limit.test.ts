/** Rate limits per API key, counted in Redis so that API replicas share them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let replicas: TestApi[];
const LIMIT = { RATE_LIMIT_MAX: 4, RATE_LIMIT_WINDOW_SECONDS: 30 };

beforeAll(async () => {
  db = await createTestDatabase('api_rate_limit');
  queue = await createTestQueue('api-rate-limit');
  // Two API processes of one deployment: same database, same Redis and prefix.
  replicas = [await startApi(db, queue.queue, LIMIT), await startApi(db, queue.queue, LIMIT)];
});
afterAll(async () => {
  for (const api of replicas ?? []) await api.close();
  await queue?.close();
  await db?.drop();
});

describe('rate limit', () => {
  it('counts one key across replicas and answers 429 with Retry-After; other keys are unaffected', async () => {
    const [a, b] = replicas as [TestApi, TestApi];
    const { key } = await a.apiKeys.create({ name: 'busy', scopes: ['read'] });
    const auth = { authorization: `Bearer ${key}` };
    const statuses: number[] = [];
    const remaining: Array<string | null> = [];
    for (let i = 0; i < LIMIT.RATE_LIMIT_MAX; i++) {
      const res = await getJson(`${(i % 2 === 0 ? a : b).url}/v1/runs`, auth);
      statuses.push(res.status);
      remaining.push(res.headers.get('ratelimit-remaining'));
    }
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(remaining).toEqual(['3', '2', '1', '0']);

    for (const api of [a, b]) {
      const refused = await getJson(`${api.url}/v1/runs`, auth);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/problem\+json/);
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(LIMIT.RATE_LIMIT_WINDOW_SECONDS);
      expect(refused.json.detail).toMatch(/4 requests per 30 s/);
    }

    const other = await getJson(`${b.url}/v1/runs`); // the helper's own key
    expect(other.status).toBe(200);
    // Health checks are not limited.
    expect((await getJson(`${a.url}/healthz`)).status).toBe(200);
  });

  it('does not count requests refused for a missing key against anyone', async () => {
    const [a] = replicas as [TestApi];
    const { key } = await a.apiKeys.create({ name: 'quiet', scopes: ['read'] });
    for (let i = 0; i < 6; i++)
      expect((await getJson(`${a.url}/v1/runs`, { authorization: '' })).status).toBe(401);
    expect((await getJson(`${a.url}/v1/runs`, { authorization: `Bearer ${key}` })).status).toBe(
      200,
    );
  });
});
