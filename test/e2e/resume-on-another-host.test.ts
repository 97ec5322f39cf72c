/**
 * Two worker hosts with different local disks share Redis, Postgres and an artifact store.
 * Worker A trains a run and is killed (SIGKILL) after its first checkpoint reached the store;
 * A's disk is then wiped. Worker B, which never saw it, picks the job up, downloads the
 * checkpoint from the store and finishes the run from there. Once per store: postgres (the
 * default), fs (a directory both "hosts" mount) and s3 (an s3rver in this process).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.js';
import { createArtifactStore } from '../../src/artifacts/create-artifact-store.js';
import { loadConfig } from '../../src/config.js';
import { TRAINING_QUEUE } from '../../src/queue/training-queue.js';
import { getJson, postJson, startApi, trainBody } from '../helpers/api.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';
import { startWorker, waitFor } from '../helpers/worker.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: Awaited<ReturnType<typeof startApi>>;
let root: string;
let s3server: S3rver;
let s3endpoint: string;
const workers: Array<ReturnType<typeof startWorker>> = [];

beforeAll(async () => {
  db = await createTestDatabase('two_hosts');
  queue = await createTestQueue('two-hosts');
  api = await startApi(db, queue.queue);
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-two-hosts-'));
  s3server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: path.join(root, 's3rver'),
    configureBuckets: [{ name: 'artifacts', configs: [] }],
  });
  s3endpoint = `http://127.0.0.1:${(await s3server.run()).port}`;
});

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  await api?.close();
  await s3server?.close();
  await queue?.close();
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

/** The store settings both hosts get: the only thing they share besides Redis and Postgres. */
function storeEnv(store: 'postgres' | 'fs' | 's3'): Record<string, string> {
  switch (store) {
    case 'postgres':
      return { ARTIFACT_STORE: 'postgres', DATABASE_URL: db.url };
    case 'fs':
      return { ARTIFACT_STORE: 'fs', ARTIFACT_ROOT: path.join(root, 'shared-mount') };
    case 's3':
      return {
        ARTIFACT_STORE: 's3',
        S3_BUCKET: 'artifacts',
        S3_PREFIX: 'gq/',
        S3_ENDPOINT: s3endpoint,
        S3_FORCE_PATH_STYLE: 'true',
        S3_ACCESS_KEY_ID: 'S3RVER',
        S3_SECRET_ACCESS_KEY: 'S3RVER',
      };
  }
}

describe.each(['postgres', 'fs', 's3'] as const)(
  'a run resumes on another host (%s store)',
  (store) => {
    it('worker B, with its own empty disk, resumes the run worker A checkpointed before it was killed, and finishes it', async () => {
      const env = storeEnv(store);
      const diskA = path.join(root, store, 'host-a');
      const diskB = path.join(root, store, 'host-b');
      const hostEnv = (disk: string) => ({
        ...env,
        // Unless the store is fs, ARTIFACT_ROOT is the host's own disk: nothing shared there.
        ARTIFACT_ROOT: env.ARTIFACT_ROOT ?? disk,
      });
      const workerA = startWorker({
        databaseUrl: db.url,
        queuePrefix: queue.prefix,
        scratchRoot: diskA,
        env: hostEnv(diskA),
      });
      workers.push(workerA);
      const logs = () => `--- A\n${workerA.log().slice(-3000)}`;

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
        logs,
      );
      const killed = new Promise((resolve) => workerA.process.once('exit', resolve));
      workerA.process.kill('SIGKILL');
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

      const workerB = startWorker({
        databaseUrl: db.url,
        queuePrefix: queue.prefix,
        scratchRoot: diskB,
        env: hostEnv(diskB),
      });
      workers.push(workerB);
      const done = await waitFor(
        'worker B to finish the run',
        async () => {
          const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
          return ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
        },
        150_000,
        () => `--- B\n${workerB.log().slice(-3000)}`,
      );
      expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
      expect(done.resumedFromStep).toBe(newestStored);
      expect(done.resumedFromStep).toBeGreaterThan(0);
      expect(done.result.steps).toBe(108);
      expect(workerB.log()).toContain('resuming from checkpoint');
      expect(workerA.log()).not.toContain('resuming from checkpoint');
      await workerB.stop();

      // The finished run's checkpoints are in the store; neither disk keeps a copy.
      const checkpoints = (await getJson(`${api.url}/v1/runs/${id}/checkpoints`)).json.items;
      expect(checkpoints.map((c: { step: number }) => c.step)).toEqual([100, 108]);
      const artifacts: ArtifactStore = createArtifactStore(loadConfig({ ...process.env, ...env }));
      const files = await artifacts.list(`runs/${id}`);
      await artifacts.close();
      expect(files.map((f) => f.key.slice(`runs/${id}/`.length))).toEqual(
        ['step-100', 'step-108'].flatMap((step) =>
          [
            'manifest.json',
            'optimizer.bin',
            'optimizer.json',
            'state.json',
            'weights.bin',
            'weights.json',
          ].map((file) => `${step}/${file}`),
        ),
      );
      expect(await readdir(path.join(diskB, 'runs'))).toEqual([]);
      expect(await readdir(path.join(diskB, 'resume'))).toEqual([]);
    }, 300_000);
  },
);
