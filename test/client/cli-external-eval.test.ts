/**
 * `gq watch` over events, run as a user would against a real API (in this process) on a real
 * database and queue, on external runs (they need no worker: the test logs and finishes them).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient, type ApiClient } from '../../src/client/api-client.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { runGq, startGq } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let client: ApiClient;

beforeAll(async () => {
  db = await createTestDatabase('cli_external');
  queue = await createTestQueue('cli-external');
  api = await startApi(db, queue.queue);
  client = createApiClient({ baseUrl: api.url, apiKey: api.key });
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});

const env = () => ({ GQ_API_URL: api.url, GQ_API_KEY: api.key });
const gq = (args: string[]) => runGq(args, env());

/**
 * A TCP relay to the API that a test can cut: `drop()` ends every open connection, and while
 * `paused` new ones are closed at once, as during an API restart.
 */
async function startRelay(target: string) {
  const { port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const state = { paused: false };
  const server = net.createServer((client) => {
    if (state.paused) return void client.destroy();
    const upstream = net.connect(Number(port), '127.0.0.1');
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => (sockets.delete(a), b.destroy()));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    state,
    drop: () => sockets.forEach((s) => s.destroy()),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('gq watch of an external run', () => {
  it('redraws on its events and exits 0 when the run is finished succeeded meanwhile', async () => {
    const run = await client.createExternal({ kind: 'external', name: 'watched' });
    const watch = startGq(['watch', run.id], env());
    try {
      await watch.waitFor(/running/);
      await client.logMetrics(run.id, [{ name: 'train/loss', step: 4, value: 0.5 }]);
      await watch.waitFor(/train\/loss=0\.500/);
      await client.finish(run.id, { status: 'succeeded' });
      const res = await watch.exited;
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^\[\.{24}\]\s+0%\s+running\s*$/),
        expect.stringMatching(/^\[\.{24}\]\s+0%\s+running\s+train\/loss=0\.500$/),
        expect.stringMatching(/^\[#{24}\] 100%\s+succeeded\s+train\/loss=0\.500$/),
        `${run.id} succeeded`,
      ]);
    } finally {
      watch.kill();
    }
  });

  it('reconnects after the stream drops and reads the run again: a finish it missed exits 1', async () => {
    const relay = await startRelay(api.url);
    const run = await client.createExternal({ kind: 'external', name: 'dropped' });
    const watch = startGq(['watch', run.id, '--json'], {
      GQ_API_URL: relay.url,
      GQ_API_KEY: api.key,
    });
    try {
      await watch.waitFor(/"status": ?"running"/);
      relay.state.paused = true;
      relay.drop();
      await watch.waitFor(/lost the event stream/, 'stderr');
      // Finished while gq cannot connect: it learns it from the status that opens its next stream.
      await client.finish(run.id, { status: 'failed', error: 'out of memory' });
      await new Promise((resolve) => setTimeout(resolve, 2500)); // two failed attempts at least
      relay.state.paused = false;
      const res = await watch.exited;
      expect(res.code, res.stderr).toBe(1);
      // The run as the API has it (read again), not only the status the event carried.
      const last = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
      expect(last).toMatchObject({
        id: run.id,
        status: 'failed',
        error: { message: 'out of memory' },
      });
      // Reported once for the outage, not once per failed attempt.
      expect(res.stderr.match(/lost the event stream/g)).toHaveLength(1);
    } finally {
      watch.kill();
      await relay.close();
    }
  });

  it('exits 1 with the problem for an unknown run', async () => {
    const res = await gq(['watch', '00000000-0000-4000-8000-000000000000']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/404 Not Found: run .* does not exist/);
  });
});
