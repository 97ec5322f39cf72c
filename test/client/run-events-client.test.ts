/**
 * The typed client's `events()` against a real API, Redis and Postgres: the opening status, the
 * events a cancel, an external run's points and its finish publish, and the ways a stream ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiError,
  createApiClient,
  type ApiClient,
  type RunStreamEvent,
} from '../../src/client/api-client.js';
import { startApi, trainBody, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';
import { startTcpRelay } from '../helpers/tcp-relay.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let client: ApiClient;

beforeAll(async () => {
  db = await createTestDatabase('client_events');
  queue = await createTestQueue('client-events');
  api = await startApi(db, queue.queue);
  client = createApiClient({ baseUrl: api.url, apiKey: api.key });
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});

/** `promise`, or a failure naming what did not happen within `ms`. */
function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The next event of a stream, failing the test if none comes. */
async function nextEvent<T>(events: AsyncIterator<T>, what: string): Promise<T> {
  const next = await within(events.next(), what);
  if (next.done) throw new Error(`the stream ended before ${what}`);
  return next.value;
}

describe('ApiClient.events', () => {
  it('opens with the run as it is, then yields the status of a queued run that is cancelled', async () => {
    const run = await client.submit(trainBody() as Parameters<typeof client.submit>[0]);
    const events = client.events(run.id)[Symbol.asyncIterator]();
    try {
      expect(await nextEvent(events, 'opening status')).toEqual({
        type: 'status',
        runId: run.id,
        status: 'queued',
        progress: null,
      });
      await client.cancel(run.id);
      expect(await nextEvent(events, 'cancelled status')).toEqual({
        type: 'status',
        runId: run.id,
        status: 'cancelled',
      });
    } finally {
      await events.return?.();
    }
  });

  it("yields an external run's points as a metrics event, nothing for points resent, then its finish", async () => {
    const run = await client.createExternal({ kind: 'external', name: 'events' });
    const events = client.events(run.id)[Symbol.asyncIterator]();
    try {
      expect(await nextEvent(events, 'opening status')).toMatchObject({
        type: 'status',
        status: 'running',
      });
      const points = [0, 1, 2].map((step) => ({ name: 'loss', step, value: 1 / (step + 1) }));
      expect(await client.logMetrics(run.id, points)).toEqual({ received: 3, inserted: 3 });
      expect(await nextEvent(events, 'metrics event')).toEqual({
        type: 'metrics',
        runId: run.id,
        series: [
          {
            name: 'loss',
            fromStep: 0,
            toStep: 2,
            count: 3,
            last: { step: 2, value: 1 / 3 },
            points: points.map(({ step, value }) => ({ step, value })),
          },
        ],
      });
      // Stored before: no event. The next one is the finish.
      expect(await client.logMetrics(run.id, points)).toEqual({ received: 3, inserted: 0 });
      await client.finish(run.id, { status: 'succeeded' });
      expect(await nextEvent(events, 'succeeded status')).toEqual({
        type: 'status',
        runId: run.id,
        status: 'succeeded',
      });
    } finally {
      await events.return?.();
    }
  });

  it('ends without throwing when the signal aborts, while waiting for an event or before starting', async () => {
    const run = await client.createExternal({ kind: 'external', name: 'aborted' });
    const abort = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const event of client.events(run.id, { signal: abort.signal })) {
        seen.push(event.type);
        // The run is quiet from here on: the loop waits for the next event when the abort comes.
        setTimeout(() => abort.abort(), 100);
      }
    })();
    await within(reading, 'end of the iteration after the abort');
    expect(seen).toEqual(['status']);

    const aborted = AbortSignal.abort();
    const none: RunStreamEvent[] = [];
    for await (const event of client.events(run.id, { signal: aborted })) none.push(event);
    expect(none).toEqual([]);
  });

  it('closes the connection when the caller leaves its loop', async () => {
    let body: ReadableStream<Uint8Array> | null = null;
    const watching = createApiClient({
      baseUrl: api.url,
      apiKey: api.key,
      fetch: async (...args) => {
        const res = await fetch(...args);
        body = res.body;
        return res;
      },
    });
    const run = await client.createExternal({ kind: 'external', name: 'left' });
    for await (const event of watching.events(run.id)) {
      expect(event.type).toBe('status');
      break;
    }
    // A cancelled body reads as ended at once; an open one would wait for the next event.
    const read = await within(body!.getReader().read(), 'end of the cancelled body', 2000);
    expect(read.done).toBe(true);
  });

  it('ends when the server closes the stream', async () => {
    const replica = await startApi(db, queue.queue);
    const run = await client.createExternal({ kind: 'external', name: 'server-gone' });
    const replicaClient = createApiClient({ baseUrl: replica.url, apiKey: replica.key });
    const events = replicaClient.events(run.id)[Symbol.asyncIterator]();
    expect((await nextEvent(events, 'opening status')).type).toBe('status');
    const closing = replica.close();
    expect(await within(events.next(), 'end of the stream')).toEqual({
      done: true,
      value: undefined,
    });
    await closing;
  });

  it('ends a stream that falls silent without closing (a dead link), and not one that keeps talking', async () => {
    const relay = await startTcpRelay(api.url);
    try {
      const run = await client.createExternal({ kind: 'external', name: 'silent' });
      const quiet = createApiClient({ baseUrl: relay.url, apiKey: api.key, streamSilenceMs: 2000 });
      const events = quiet.events(run.id)[Symbol.asyncIterator]();
      expect((await nextEvent(events, 'opening status')).type).toBe('status');
      // Events every 200 ms keep it open past the silence period (2 s of events, then more).
      for (let step = 0; step < 15; step++) {
        await client.logMetrics(run.id, [{ name: 'loss', step, value: 1 / (step + 1) }]);
        expect((await nextEvent(events, `the points of step ${step}`)).type).toBe('metrics');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // The link goes quiet but stays open: the stream ends after the silence, not never.
      relay.state.muted = true;
      await client.logMetrics(run.id, [{ name: 'loss', step: 99, value: 0.01 }]);
      const quietSince = Date.now();
      expect(await within(events.next(), 'end of the silent stream', 8000)).toEqual({
        done: true,
        value: undefined,
      });
      // Ended by the silence (2 s after the last byte), not at once: well over a second.
      expect(Date.now() - quietSince).toBeGreaterThanOrEqual(1000);
    } finally {
      relay.drop();
      await relay.close();
    }
  });

  it("allEvents opens with ready, then yields every run's status, without metric batches", async () => {
    const events = client.allEvents()[Symbol.asyncIterator]();
    try {
      expect(await nextEvent(events, 'ready')).toEqual({ type: 'ready' });
      const run = await client.createExternal({ kind: 'external', name: 'listed' });
      expect(await nextEvent(events, 'running status')).toEqual({
        type: 'status',
        runId: run.id,
        status: 'running',
      });
      await client.logMetrics(run.id, [{ name: 'loss', step: 0, value: 1 }]);
      await client.finish(run.id, { status: 'cancelled' });
      expect(await nextEvent(events, 'cancelled status')).toEqual({
        type: 'status',
        runId: run.id,
        status: 'cancelled',
      });
    } finally {
      await events.return?.();
    }
  });

  it('throws ApiError for an unknown run (404), a wrong key (401) and a malformed id (400)', async () => {
    const firstOf = async (c: ApiClient, id: string): Promise<unknown> => {
      try {
        for await (const event of c.events(id)) return event;
        return 'ended';
      } catch (error) {
        return error;
      }
    };
    const unknown = await firstOf(client, '00000000-0000-4000-8000-000000000000');
    expect(unknown).toBeInstanceOf(ApiError);
    expect((unknown as ApiError).status).toBe(404);
    expect((unknown as ApiError).problem.detail).toMatch(/does not exist/);

    const run = await client.createExternal({ kind: 'external', name: 'refused' });
    const wrongKey = await firstOf(
      createApiClient({ baseUrl: api.url, apiKey: 'gq_wrong' }),
      run.id,
    );
    expect(wrongKey).toBeInstanceOf(ApiError);
    expect((wrongKey as ApiError).status).toBe(401);

    const malformed = await firstOf(client, 'not-a-uuid');
    expect((malformed as ApiError).status).toBe(400);
  });
});
