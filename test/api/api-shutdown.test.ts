/**
 * The API process (`src/api/main.ts`) shuts down gracefully on SIGTERM even while clients hold
 * event streams open: the streams are ended (clients reconnect elsewhere), a stream asked for
 * afterwards on a connection that was busy gets none, and the process exits 0 well within
 * compose's grace period instead of waiting for connections that never finish.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/private-services.js';
import { createTestQueue } from '../helpers/queue.js';
import { waitFor } from '../helpers/worker-process.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;

beforeAll(async () => {
  db = await createTestDatabase('api_shutdown');
  queue = await createTestQueue('api-shutdown');
});
afterAll(async () => {
  await queue?.close();
  await db?.drop();
});

/** Opens an event stream and reads it in the background; `ended` settles when it ends. */
async function openStream(url: string, key: string) {
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  const ended = (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return true;
  })();
  return { first, ended };
}

describe('API shutdown', () => {
  it('ends open event streams on SIGTERM and exits 0 promptly', async () => {
    const key = `gq_${randomBytes(32).toString('hex')}`;
    const port = await freePort();
    const api = spawn(process.execPath, ['--import', 'tsx', 'src/api/main.ts'], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        QUEUE_PREFIX: queue.prefix,
        PORT: String(port),
        API_KEYS: key,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    api.stdout.on('data', (d: Buffer) => (log += d.toString()));
    api.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => api.once('exit', resolve));
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        'the API to be ready',
        () =>
          fetch(`${base}/readyz`).then(
            (r) => r.ok || undefined,
            () => undefined,
          ),
        30_000,
      );
      const created = await fetch(`${base}/v1/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'external', name: 'followed' }),
      });
      const { id } = (await created.json()) as { id: string };
      const all = await openStream(`${base}/v1/events`, key);
      const one = await openStream(`${base}/v1/runs/${id}/events`, key);
      expect(all.first).toMatch(/^event: ready/);
      expect(one.first).toMatch(/^event: status/);

      // A keep-alive connection busy at the signal (a request whose body is still arriving),
      // which then asks for a stream: it must not get one that keeps the process alive.
      const busy = net.connect(port, '127.0.0.1');
      let received = '';
      busy.on('data', (d: Buffer) => (received += d.toString()));
      busy.on('error', () => undefined);
      const closedBusy = new Promise<void>((resolve) => busy.once('close', () => resolve()));
      const body = JSON.stringify({ kind: 'external', name: 'slow' });
      busy.write(
        `POST /v1/runs HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${key}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));

      const signalled = Date.now();
      api.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
      busy.write(body.slice(5));
      await waitFor(
        'the slow request to be answered',
        () => /"id"/.test(received) || undefined,
        5000,
      );
      expect(received).toMatch(/^HTTP\/1\.1 201/);
      if (!busy.destroyed)
        busy.write(`GET /v1/events HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer ${key}\r\n\r\n`);
      const code = await Promise.race([
        exited,
        new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000)),
      ]);
      expect(code, log).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(await all.ended).toBe(true);
      expect(await one.ended).toBe(true);
      await closedBusy;
      // Refused (503) or the connection closed: never a stream.
      expect(received).not.toMatch(/text\/event-stream/);
    } finally {
      if (api.exitCode === null) api.kill('SIGKILL');
      await exited;
    }
  });
});
