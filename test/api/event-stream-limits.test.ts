/**
 * Event streams under hostile use (docs/limits.md, "Live event streams"): a client that never
 * reads is dropped once its stream's buffer passes EVENT_STREAM_BUFFER_BYTES, and the API's
 * memory stays bounded while other streams keep receiving; an event over EVENT_MAX_BYTES becomes
 * a small `too-large` notice; one key holds at most EVENT_STREAMS_PER_KEY streams per process;
 * a revoked key's streams end within EVENT_STREAM_KEY_CHECK_MS, on every replica.
 */
import net from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient, type RunResponse } from '../../src/client/api-client.js';
import { followRun } from '../../src/client/follow-run.js';
import { readSseFrames } from '../../src/client/sse.js';
import { allRunsEventChannel, runEventChannel } from '../../src/queue/run-events.js';
import { postJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let replica: TestApi;
let publisher: Redis;

const LIMITS = {
  EVENT_STREAM_BUFFER_BYTES: 256 * 1024,
  EVENT_MAX_BYTES: 64 * 1024,
  EVENT_STREAMS_PER_KEY: 3,
  EVENT_STREAM_KEY_CHECK_MS: 300,
  // One test sends 2,000 series in a request to make an event over EVENT_MAX_BYTES.
  METRICS_MAX_SERIES_PER_RUN: 5000,
};

beforeAll(async () => {
  db = await createTestDatabase('api_event_stream_limits');
  queue = await createTestQueue('api-event-stream-limits');
  api = await startApi(db, queue.queue, LIMITS);
  replica = await startApi(db, queue.queue, LIMITS);
  publisher = new Redis(REDIS_URL);
});
afterAll(async () => {
  await publisher?.quit();
  await api?.close();
  await replica?.close();
  await queue?.close();
  await db?.drop();
});

const freshKey = async () =>
  (await api.apiKeys.create({ name: `k-${Math.random()}`, scopes: ['read', 'submit'] })).key;

/**
 * The memory JavaScript holds (heap and buffers) after full garbage collections; buffers of
 * closed sockets are released a moment after their close, hence the second one.
 */
async function retainedBytes(): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  await new Promise((resolve) => setTimeout(resolve, 500));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

interface Sse {
  /** Resolves with the next event of `type` that passes `match` (10 s at most). */
  next(type: string, match?: (data: any) => boolean): Promise<any>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

async function openStream(at: TestApi, path: string, key: string): Promise<Sse> {
  const abort = new AbortController();
  const res = await fetch(`${at.url}${path}`, {
    headers: { authorization: `Bearer ${key}` },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  const events: Array<{ type: string; data: any }> = [];
  const ended = (async () => {
    try {
      for await (const frame of readSseFrames(res.body!))
        events.push({ type: frame.event, data: JSON.parse(frame.data) });
    } catch {
      // aborted, or the connection was cut
    }
  })();
  return {
    async next(type, match = () => true) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const i = events.findIndex((e) => e.type === type && match(e.data));
        if (i >= 0) return events.splice(0, i + 1).pop()!.data;
        if (Date.now() > deadline) throw new Error(`no ${type} event within 10 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    ended,
    close: () => abort.abort(),
  };
}

/**
 * A stream read over a raw socket that stops reading once the stream has opened, as a hostile
 * or stalled client does: what the server writes piles up in the kernel, then in the API.
 */
async function openStalledStream(at: TestApi, path: string, key: string) {
  const socket = net.connect(Number(new URL(at.url).port), '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${key}\r\n\r\n`);
  let text = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      text += chunk.toString('latin1');
      if (!/\nevent: \w+\ndata: .*\n\n/.test(text)) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    });
  });
  expect(text).toMatch(/^HTTP\/1\.1 200/);
  let received = 0;
  const closed = new Promise<void>((resolve) => {
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  return {
    /** Starts reading again: resolves with the bytes read once the server has closed it. */
    async drainUntilClosed(ms: number): Promise<number> {
      socket.resume();
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the stalled stream was still open after ${ms} ms`)),
          ms,
        );
      });
      try {
        await Promise.race([closed, gaveUp]);
      } finally {
        clearTimeout(timer);
        socket.destroy();
      }
      return received;
    },
  };
}

describe('a client that never reads', () => {
  it('is dropped once its buffer passes the cap; memory stays bounded and other streams get every event', async () => {
    const reader = await openStream(api, '/v1/events', await freshKey());
    await reader.next('ready');
    const stalled = await openStalledStream(api, '/v1/events', await freshKey());
    const before = await retainedBytes();

    // 800 events of 50 KB (under EVENT_MAX_BYTES): 40 MB for a stream that does not read.
    const EVENTS = 800;
    const pad = 'x'.repeat(50_000);
    const channel = allRunsEventChannel(queue.prefix);
    for (let step = 1; step <= EVENTS; step++) {
      await publisher.publish(
        channel,
        JSON.stringify({ type: 'progress', runId: 'r1', step, totalSteps: EVENTS, epoch: 0, pad }),
      );
      // Paced by the reading stream, so the API's Redis subscriber never falls behind.
      if (step % 50 === 0) await reader.next('progress', (e) => e.step === step);
    }
    const grown = (await retainedBytes()) - before;
    console.log(
      `[event streams] stalled client: the API retained ${(grown / 1e6).toFixed(1)} MB more after 40 MB of events`,
    );
    const read = await stalled.drainUntilClosed(15_000);
    console.log(
      `[event streams] stalled client: it read ${(read / 1e6).toFixed(1)} MB before the server closed its stream`,
    );
    expect(grown).toBeLessThan(10e6);
    expect(read).toBeLessThan(20e6);
    reader.close();
  });
});

describe('an event larger than EVENT_MAX_BYTES', () => {
  it('is replaced by a small too-large notice; the next event arrives whole', async () => {
    const created = await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'wide' });
    const id = created.json.id as string;
    const stream = await openStream(api, `/v1/runs/${id}/events`, await freshKey());
    await stream.next('status');
    // A batch of 2,000 series, each a summary: about 250 KB as one event.
    const series = Array.from({ length: 2000 }, (_, i) => ({
      name: `layer/${i}/grad_norm`,
      fromStep: 1,
      toStep: 1,
      count: 1,
      last: { step: 1, value: i },
    }));
    await publisher.publish(
      runEventChannel(queue.prefix, id),
      JSON.stringify({ type: 'metrics', runId: id, series }),
    );
    const notice = await stream.next('too-large');
    expect(notice).toMatchObject({ type: 'too-large', runId: id, event: 'metrics', limit: 65536 });
    expect(notice.bytes).toBeGreaterThan(65536);
    expect(notice.detail).toMatch(/EVENT_MAX_BYTES/);
    await postJson(`${api.url}/v1/runs/${id}/metrics`, {
      points: [{ name: 'loss', step: 1, value: 0.5 }],
    });
    expect((await stream.next('metrics')).series[0]).toMatchObject({ name: 'loss', count: 1 });
    stream.close();
  });

  it('makes the client (gq watch) read the run again, so the points it did not carry show', async () => {
    const created = await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'watched' });
    const id = created.json.id as string;
    const client = createApiClient({ baseUrl: api.url, apiKey: await freshKey() });
    const seen: RunResponse[] = [];
    const drops: string[] = [];
    const followed = followRun(client, id, {
      onChange: (run) => seen.push(run),
      onDrop: (reason) => drops.push(reason),
    });
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    // 2,000 series in one request: its metrics event (summaries only) is over 64 KiB.
    const points = Array.from({ length: 2000 }, (_, i) => ({ name: `s/${i}`, step: 1, value: i }));
    expect((await postJson(`${api.url}/v1/runs/${id}/metrics`, { points })).status).toBe(200);
    const deadline = Date.now() + 10_000;
    while (Object.keys(seen.at(-1)?.latestMetrics ?? {}).length < 2000) {
      if (Date.now() > deadline) throw new Error('the watched run never showed the 2,000 series');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await postJson(`${api.url}/v1/runs/${id}/finish`, { status: 'succeeded' });
    expect((await followed).status).toBe('succeeded');
    // Read again on the notice, not after a failure and a reconnect.
    expect(drops).toEqual([]);
    for (const run of seen) expect(run).toMatchObject({ id });
  });
});

describe('streams per key', () => {
  it('one more than EVENT_STREAMS_PER_KEY gets 429 naming the limit; closing one frees a place', async () => {
    const key = await freshKey();
    const created = await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'many' });
    const paths = ['/v1/events', '/v1/events', `/v1/runs/${created.json.id}/events`];
    const open = await Promise.all(paths.map((p) => openStream(api, p, key)));
    for (const path of ['/v1/events', `/v1/runs/${created.json.id}/events`]) {
      const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(429);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await res.json()) as { detail: string }).detail).toMatch(
        /EVENT_STREAMS_PER_KEY \(3\)/,
      );
    }
    // Another key is not affected, nor is another replica (the limit is per API process).
    (await openStream(api, '/v1/events', await freshKey())).close();
    (await openStream(replica, '/v1/events', key)).close();

    open[0]!.close();
    const deadline = Date.now() + 10_000;
    let status = 429;
    while (status === 429 && Date.now() < deadline) {
      const res = await fetch(`${api.url}/v1/events`, {
        headers: { authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(5000),
      });
      status = res.status;
      await res.body?.cancel();
      if (status === 429) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(200);
    for (const s of open) s.close();
  });

  it('gives back the place of a client that left while its key was being checked', async () => {
    const key = await freshKey();
    // Each request is dropped within a few milliseconds: some before the API has checked the
    // key and started the stream, when the response is already closed.
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const abort = new AbortController();
        const res = fetch(`${api.url}/v1/events`, {
          headers: { authorization: `Bearer ${key}` },
          signal: abort.signal,
        }).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, i % 6));
        abort.abort();
        await res;
      }),
    );
    // Every place comes back: the key opens as many streams as the limit allows.
    const deadline = Date.now() + 10_000;
    let statuses: number[];
    do {
      const tries = await Promise.all(
        [0, 1, 2].map(() =>
          fetch(`${api.url}/v1/events`, {
            headers: { authorization: `Bearer ${key}` },
            signal: AbortSignal.timeout(5000),
          }),
        ),
      );
      statuses = tries.map((r) => r.status);
      await Promise.all(tries.map((r) => r.body?.cancel()));
      if (statuses.every((s) => s === 200)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (Date.now() < deadline);
    expect(statuses).toEqual([200, 200, 200]);
  });
});

describe('a revoked key', () => {
  it("ends the key's open streams on every replica within EVENT_STREAM_KEY_CHECK_MS; other keys' streams stay", async () => {
    const created = await api.apiKeys.create({
      name: `revoked-${Math.random()}`,
      scopes: ['read'],
    });
    const kept = await openStream(api, '/v1/events', await freshKey());
    const doomed = [
      await openStream(api, '/v1/events', created.key),
      await openStream(replica, '/v1/events', created.key),
    ];
    for (const s of [kept, ...doomed]) await s.next('ready');

    // What `npm run keys:revoke` does.
    const revokedAt = Date.now();
    await api.apiKeys.revoke(created.id);
    for (const s of doomed) {
      await Promise.race([
        s.ended,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('the revoked key’s stream is still open')), 10_000),
        ),
      ]);
    }
    console.log(
      `[event streams] revoked key's streams ended ${Date.now() - revokedAt} ms after revocation (check every ${LIMITS.EVENT_STREAM_KEY_CHECK_MS} ms)`,
    );
    const again = await fetch(`${replica.url}/v1/events`, {
      headers: { authorization: `Bearer ${created.key}` },
    });
    expect(again.status).toBe(401);

    // The other key's stream still relays events.
    await publisher.publish(
      allRunsEventChannel(queue.prefix),
      JSON.stringify({ type: 'status', runId: 'r2', status: 'running' }),
    );
    expect(await kept.next('status', (e) => e.runId === 'r2')).toMatchObject({ runId: 'r2' });
    kept.close();
  });

  it("ends an env key's streams when the API_KEYS sync drops it", async () => {
    const envKey = `env-${'k'.repeat(40)}`;
    await api.apiKeys.syncEnvKeys([envKey]);
    const stream = await openStream(replica, '/v1/events', envKey);
    await stream.next('ready');
    await api.apiKeys.syncEnvKeys([]);
    await Promise.race([
      stream.ended,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the dropped env key’s stream is still open')), 10_000),
      ),
    ]);
  });
});
