/**
 * The worker in this test's own process (createWorker), on a real database, queue and artifact
 * store: a training run and an eval of its checkpoint go through the shared attempt runner, and
 * an eval whose lease is taken by another attempt has its child killed at once (eval attempts
 * once ran without a heartbeat and kept computing for a run they no longer owned).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { loadConfig } from '../../src/config.js';
import { createCancelRequests, type CancelRequests } from '../../src/queue/cancel-requests.js';
import { DEFAULT_RETRY_POLICY } from '../../src/queue/enqueue-run.js';
import { createRunLifecycle, type RunLifecycle } from '../../src/runs/run-lifecycle.js';
import { createWorker, type RunningWorker } from '../../src/worker/create-worker.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';
import { recordedEvents } from '../helpers/recorded-events.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let artifacts: ArtifactStore;
let cancels: CancelRequests;
let scratch: string;
let worker: RunningWorker;
let lifecycle: RunLifecycle;
const published = recordedEvents();

const model = { arch: 'googlenet', numClasses: 2, inputSize: 32, width: 0.125 };

beforeAll(async () => {
  db = await createTestDatabase('create_worker');
  queue = await createTestQueue('create-worker');
  artifacts = createPostgresArtifactStore(db.url);
  cancels = createCancelRequests(REDIS_URL, queue.prefix);
  scratch = await mkdtemp(path.join(os.tmpdir(), 'gq-create-worker-'));
  const config = loadConfig({
    DATABASE_URL: db.url,
    REDIS_URL,
    QUEUE_PREFIX: queue.prefix,
    SCRATCH_ROOT: scratch,
    TRAIN_BACKEND: 'wasm',
    TRAIN_THREADS: '1',
    WORKER_CONCURRENCY: '1',
  });
  worker = await createWorker({
    config,
    logger: pino({ level: 'silent' }),
    prisma: db.prisma,
    artifacts,
    events: published,
    cancels,
    childEnv: process.env,
    runHeartbeatMs: 200,
  });
  lifecycle = createRunLifecycle({
    prisma: db.prisma,
    events: published,
    queue: queue.queue,
    retry: DEFAULT_RETRY_POLICY,
  });
});
afterAll(async () => {
  await worker?.stop('test over');
  await cancels?.close();
  await artifacts?.close();
  await queue?.close();
  await db?.drop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const statusOf = async (id: string) =>
  (await db.prisma.run.findUniqueOrThrow({ where: { id } })).status;

/** A queued eval of `trained`'s newest checkpoint on `size` generated images. */
async function queueEval(trainedId: string, size: number) {
  const checkpoint = await db.prisma.checkpoint.findFirstOrThrow({
    where: { runId: trainedId },
    orderBy: { step: 'desc' },
  });
  return lifecycle.queue({
    kind: 'eval',
    name: null,
    priority: 50,
    idempotencyKey: null,
    config: {
      checkpoint: {
        runId: trainedId,
        checkpointId: checkpoint.id,
        step: checkpoint.step,
        location: checkpoint.location,
      },
      model,
      seed: 0,
      dataset: { format: 'synthetic', numClasses: 2, size, seed: 3 },
      batchSize: 8,
    },
  });
}

describe('createWorker', () => {
  let trainedId: string;

  it('trains a run and evaluates its checkpoint in-process', async () => {
    const trained = await lifecycle.queue({
      kind: 'train',
      name: null,
      priority: 50,
      idempotencyKey: null,
      config: {
        model,
        dataset: { format: 'synthetic', numClasses: 2, size: 64, seed: 1 },
        train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
        checkpoint: { everySteps: 4 },
      },
    });
    trainedId = trained.id;
    await expect.poll(() => statusOf(trained.id), { timeout: 90_000 }).toBe('succeeded');
    const evaluated = await queueEval(trained.id, 32);
    await expect.poll(() => statusOf(evaluated.id), { timeout: 90_000 }).toBe('succeeded');
    const run = await db.prisma.run.findUniqueOrThrow({ where: { id: evaluated.id } });
    expect(run.result).toMatchObject({ count: 32 });
    const statuses = published.events
      .filter((e) => e.runId === evaluated.id && e.type === 'status')
      .map((e) => (e.type === 'status' ? e.status : ''));
    expect(statuses).toEqual(['queued', 'running', 'succeeded']);
  });

  it('kills an eval child as soon as another attempt takes its run', async () => {
    // Long enough that an eval left running would still be at work when the test looks.
    const evaluated = await queueEval(trainedId, 400_000);
    await expect.poll(() => worker.running.has(evaluated.id), { timeout: 60_000 }).toBe(true);
    // Another attempt claims the run (as after a lost lock): this attempt's lease is gone.
    await lifecycle.claim(evaluated.id, { workerId: 'thief', attempt: 2 });
    await expect.poll(() => worker.running.has(evaluated.id), { timeout: 10_000 }).toBe(false);
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: evaluated.id } })).toMatchObject({
      status: 'running',
      workerId: 'thief',
    });
  });
});
