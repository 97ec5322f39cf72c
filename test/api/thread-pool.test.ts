/**
 * The API's pool of model threads (src/api/models/thread-pool.ts), with a stand-in thread
 * (test/fixtures/pool-thread.mjs) that can compute, throw or exit on demand: a crashed thread
 * fails only its request and is replaced, the queue is bounded, a client that leaves is
 * dropped from the queue, and close() leaves no thread behind.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createThreadPool,
  ThreadCrashedError,
  ThreadPoolClosedError,
  ThreadPoolFullError,
  type ThreadPool,
} from '../../src/api/models/thread-pool.js';

const FIXTURE = pathToFileURL(path.resolve('test/fixtures/pool-thread.mjs')).href;

let pool: ThreadPool | undefined;
/** Every thread the pool started, to see that each one ends. */
let started: Worker[] = [];

afterEach(async () => {
  await pool?.close();
  pool = undefined;
  started = [];
});

function makePool(size: number, queueLength: number) {
  const exits: number[] = [];
  pool = createThreadPool({
    size,
    queueLength,
    start: () => {
      const code = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(FIXTURE)}); });`;
      const worker = new Worker(code, { eval: true });
      started.push(worker);
      return worker;
    },
    describeLimit: (threads, waiting) => `${threads} threads (T) busy, ${waiting} waiting (Q)`,
    onThreadExit: (threadId) => exits.push(threadId),
  });
  return { pool, exits };
}

type Reply = { value: number; threadId: number };
const work = (value: number, ms = 0) => ({ op: 'work', value, ms });

describe('the model thread pool', () => {
  it('fails only the request of a thread that crashes, and serves the next on a fresh thread', async () => {
    const { pool, exits } = makePool(1, 4);
    const first = await pool.use((t) => t.request<Reply>(work(1)).then((r) => ({ r, id: t.id })));
    expect(first.r.value).toBe(1);

    for (const op of ['throw', 'exit']) {
      const crashed = pool.use((t) => t.request({ op }));
      await expect(crashed).rejects.toBeInstanceOf(ThreadCrashedError);
      await expect(crashed).rejects.toThrow(/a model thread stopped/);
    }
    expect(exits).toHaveLength(2);
    const after = await pool.use((t) => t.request<Reply>(work(2)).then((r) => ({ r, id: t.id })));
    expect(after.r.value).toBe(2);
    expect(after.id).not.toBe(first.id);
    expect(pool.stats()).toEqual({ threads: 1, busy: 0, waiting: 0 });
  }, 60_000);

  it('queues up to its limit and refuses past it, naming the limit, with a retry time', async () => {
    const { pool } = makePool(1, 2);
    const running = pool.use((t) => t.request<Reply>(work(0, 600)));
    const queued = [1, 2].map((v) => pool.use((t) => t.request<Reply>(work(v))));
    const refused = pool.use((t) => t.request<Reply>(work(3)));
    await expect(refused).rejects.toBeInstanceOf(ThreadPoolFullError);
    const error = (await refused.catch((e: unknown) => e)) as ThreadPoolFullError;
    expect(error.message).toMatch(/1 threads \(T\) busy, 2 waiting \(Q\)/);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(pool.stats()).toEqual({ threads: 1, busy: 1, waiting: 2 });
    expect((await running).value).toBe(0);
    expect((await Promise.all(queued)).map((r) => r.value)).toEqual([1, 2]);
  }, 60_000);

  it('drops a waiting request whose client went away, without running it', async () => {
    const { pool } = makePool(1, 4);
    const ran: number[] = [];
    const running = pool.use((t) => t.request<Reply>(work(0, 400)));
    const leaving = new AbortController();
    const left = pool.use((t) => (ran.push(1), t.request<Reply>(work(1))), {
      signal: leaving.signal,
    });
    const stays = pool.use((t) => (ran.push(2), t.request<Reply>(work(2))));
    leaving.abort(new Error('the client went away'));
    await expect(left).rejects.toThrow('the client went away');
    expect(pool.stats().waiting).toBe(1);
    await running;
    expect((await stays).value).toBe(2);
    expect(ran).toEqual([2]);
  }, 60_000);

  it('close() fails running and waiting requests and ends every thread', async () => {
    const { pool } = makePool(2, 4);
    const busy = [0, 1, 2].map((v) =>
      pool.use((t) => t.request<Reply>(work(v, 2000))).catch((error: unknown) => error),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(pool.stats()).toMatchObject({ threads: 2, busy: 2, waiting: 1 });
    const exited = started.map((w) => new Promise((resolve) => w.once('exit', resolve)));
    const closing = Date.now();
    await pool.close();
    for (const outcome of await Promise.all(busy)) {
      expect(outcome).toBeInstanceOf(ThreadPoolClosedError);
    }
    await Promise.all(exited);
    // Terminated, not waited for: the threads were mid-computation for 2 s.
    expect(Date.now() - closing).toBeLessThan(1500);
    expect(pool.stats()).toEqual({ threads: 0, busy: 0, waiting: 0 });
    await expect(pool.use((t) => t.request(work(9)))).rejects.toBeInstanceOf(ThreadPoolClosedError);
  }, 60_000);
});
