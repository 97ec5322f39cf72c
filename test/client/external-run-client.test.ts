/** The typed client logs an external run: create, log (idempotently), query, compare, finish. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, createApiClient } from '../../src/client/api-client.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;

beforeAll(async () => {
  db = await createTestDatabase('client_external');
  queue = await createTestQueue('client-external');
  api = await startApi(db, queue.queue);
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});

describe('api client, external runs', () => {
  it('creates a run, logs points twice without doubles, reads a range, compares and finishes', async () => {
    const gq = createApiClient({ baseUrl: api.url, apiKey: api.key });
    const run = await gq.createExternal({ kind: 'external', name: 'script', config: { seed: 1 } });
    expect(run.status).toBe('running');
    const points = Array.from({ length: 100 }, (_, step) => ({
      name: 'loss',
      step,
      value: 1 / (step + 1),
    }));
    expect(await gq.logMetrics(run.id, points)).toEqual({ received: 100, inserted: 100 });
    expect(await gq.logMetrics(run.id, points)).toEqual({ received: 100, inserted: 0 });

    const range = await gq.metrics(run.id, { names: ['loss'], fromStep: 10, toStep: 14 });
    expect(range.series[0]!.points).toEqual(
      points.slice(10, 15).map(({ step, value }) => ({ step, value })),
    );
    const buckets = await gq.metrics(run.id, { names: ['loss'], maxPoints: 10 });
    expect(buckets.series[0]!.points.length).toBeLessThanOrEqual(10);
    expect(Math.max(...buckets.series[0]!.points.map((p) => p.max!))).toBe(1);

    const compared = await gq.compare([run.id], { names: ['loss'], maxPoints: 5 });
    expect(compared.runs[0]!.runId).toBe(run.id);

    expect((await gq.finish(run.id, { status: 'failed', error: 'diverged' })).error).toMatchObject({
      message: 'diverged',
    });
    await expect(gq.logMetrics(run.id, points)).rejects.toBeInstanceOf(ApiError);
  });
});
