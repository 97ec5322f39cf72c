/** CORS: off by default (see hostile-input.test.ts); with CORS_ORIGINS, only those origins. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
const DASHBOARD = 'https://dash.example';

beforeAll(async () => {
  db = await createTestDatabase('api_cors');
  queue = await createTestQueue('api-cors');
  api = await startApi(db, queue.queue, { CORS_ORIGINS: [DASHBOARD] });
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});

function preflight(origin: string) {
  return fetch(`${api.url}/v1/runs`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  });
}

describe('CORS with CORS_ORIGINS set', () => {
  it('answers a listed origin’s preflight without a key, allowing Authorization', async () => {
    const res = await preflight(DASHBOARD);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(DASHBOARD);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
  });

  it('gives other origins no CORS headers, and still wants a key for the request itself', async () => {
    const res = await preflight('https://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetch(`${api.url}/v1/runs`, { headers: { origin: DASHBOARD } });
    expect(get.status).toBe(401);
    expect(get.headers.get('access-control-allow-origin')).toBe(DASHBOARD);
  });
});
