/**
 * Two worker hosts with different local disks share Redis and Postgres. Worker A trains a run
 * and is killed (SIGKILL) after its first checkpoint reached the artifact store; A's disk is
 * then wiped. Worker B, which never saw it, picks the stalled job up, downloads the checkpoint
 * from Postgres and finishes the run from there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { TRAINING_QUEUE } from '../../src/jobs.js';
import { getJson, postJson, startApi, trainBody } from '../helpers/api.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: Awaited<ReturnType<typeof startApi>>;
let root: string;
const workers: ChildProcess[] = [];
const logs = new Map<string, string>();

beforeAll(async () => {
  db = await createTestDatabase('two_hosts');
  queue = await createTestQueue('two-hosts');
  api = await startApi(db, queue.queue);
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-two-hosts-'));
});

afterAll(async () => {
  for (const worker of workers) {
    if (worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
  }
  await api?.close();
  await queue?.close();
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

/** A worker process whose only local disk is `scratch`; the artifact store is Postgres. */
function startWorker(name: string, scratch: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      REDIS_URL,
      QUEUE_PREFIX: queue.prefix,
      ARTIFACT_STORE: 'postgres',
      SCRATCH_ROOT: scratch,
      // Pointed at the same scratch dir: nothing may be read from or written to a shared path.
      ARTIFACT_ROOT: scratch,
      TRAIN_BACKEND: 'wasm',
      TRAIN_THREADS: '1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  logs.set(name, '');
  const append = (d: Buffer) => logs.set(name, (logs.get(name) ?? '') + d.toString());
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  workers.push(child);
  return child;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const tail = [...logs].map(([n, l]) => `--- ${n}\n${l.slice(-3000)}`).join('\n');
      throw new Error(`timed out waiting for ${what}\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a run resumes on another host', () => {
  it('worker B, with its own empty disk, resumes the run worker A checkpointed before it was killed, and finishes it', async () => {
    const diskA = path.join(root, 'host-a');
    const diskB = path.join(root, 'host-b');
    const workerA = startWorker('worker A', diskA);

    // Tiny preset, 72 training images in batches of 8: 9 steps an epoch, 108 in all.
    const submitted = await postJson(
      `${api.url}/v1/runs`,
      trainBody({
        dataset: { format: 'synthetic', numClasses: 4, size: 80, seed: 1 },
        train: {
          epochs: 12,
          batchSize: 8,
          optimizer: { type: 'adam', learningRate: 0.002 },
          seed: 3,
        },
        checkpoint: { everySteps: 10, keepLatest: 2 },
      }),
    );
    expect(submitted.status).toBe(201);
    const id: string = submitted.json.id;

    // A checkpoint row is written only after its bytes are in the store.
    const first = await waitFor(
      'worker A to store a checkpoint',
      async () => (await db.prisma.checkpoint.findFirst({ where: { runId: id } })) ?? undefined,
      90_000,
    );
    const killed = new Promise((resolve) => workerA.once('exit', resolve));
    workerA.kill('SIGKILL');
    await killed;
    const stored = await db.prisma.checkpoint.findMany({ where: { runId: id } });
    const newestStored = Math.max(...stored.map((c) => c.step));
    expect(newestStored).toBeGreaterThanOrEqual(first.step);
    expect(newestStored).toBeLessThan(108);
    // Wipe A's disk, once its orphaned training child has gone (it exits on IPC disconnect).
    await new Promise((r) => setTimeout(r, 1000));
    await rm(diskA, { recursive: true, force: true });

    // BullMQ would put the job back in the queue once A's lock expired (lockDuration) and a
    // stalled-job check saw it (every 30 s): do what that check does now, with A's lock token,
    // instead of waiting a minute or more.
    const redis = new Redis(REDIS_URL);
    const token = await redis.get(`${queue.prefix}:${TRAINING_QUEUE}:${id}:lock`);
    await redis.quit();
    const job = await queue.queue.getJob(id);
    expect(await job?.getState()).toBe('active');
    await job?.moveToWait(token ?? undefined);
    expect(['waiting', 'prioritized']).toContain(await job?.getState());

    startWorker('worker B', diskB);
    const done = await waitFor(
      'worker B to finish the run',
      async () => {
        const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
        return ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
      },
      150_000,
    );
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.resumedFromStep).toBe(newestStored);
    expect(done.resumedFromStep).toBeGreaterThan(0);
    expect(done.result.steps).toBe(108);
    expect(logs.get('worker B')).toContain('resuming from checkpoint');
    expect(logs.get('worker A')).not.toContain('resuming from checkpoint');

    // The finished run's checkpoints are in the store; neither disk keeps a copy.
    const checkpoints = (await getJson(`${api.url}/v1/runs/${id}/checkpoints`)).json.items;
    expect(checkpoints.map((c: { step: number }) => c.step)).toEqual([100, 108]);
    const artifacts = createPostgresArtifactStore(db.url);
    const files = await artifacts.list(`runs/${id}/step-108`);
    await artifacts.close();
    expect(files.map((f) => f.key.split('/').at(-1))).toEqual([
      'manifest.json',
      'optimizer.bin',
      'optimizer.json',
      'state.json',
      'weights.bin',
      'weights.json',
    ]);
    expect(await readdir(path.join(diskB, 'runs'))).toEqual([]);
    expect(await readdir(path.join(diskB, 'resume'))).toEqual([]);
  }, 300_000);
});
