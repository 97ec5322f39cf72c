import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { checkpointsToDelete } from '../../src/checkpoints/checkpoint-retention.js';
import { createRunStore, type RunStore } from '../../src/worker/run-store.js';
import { SeriesLimitError } from '../../src/db/metric-series.js';
import { LeaseLostError, type Lease } from '../../src/runs/lease.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';
import { workerWrites } from '../helpers/worker-writes.js';
import type { RunLifecycle } from '../../src/runs/run-lifecycle.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let store: RunStore;
let lifecycle: RunLifecycle;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let artifactStore: ArtifactStore;
let runId: string;
/** The lease of a first attempt on `runId`, claimed in beforeEach. */
let lease: Lease;

beforeAll(async () => {
  db = await createTestDatabase('run_store');
  artifactStore = createPostgresArtifactStore(db.url);
  queue = await createTestQueue('run_store');
  ({ store, lifecycle } = workerWrites(db.prisma, artifactStore, queue.queue));
});
afterAll(async () => {
  await artifactStore?.close();
  await queue?.close();
  await db?.drop();
});
beforeEach(async () => {
  await db.prisma.run.deleteMany();
  runId = (await db.prisma.run.create({ data: { kind: 'train', config: {} } })).id;
  lease = (await lifecycle.claim(runId, { workerId: 'w1', attempt: 1, device: 'cpu:0' }))!;
});

const points = (steps: number[], value = 1) =>
  steps.map((step) => ({ name: 'train/loss', step, value: value + step, time: Date.now() }));

describe('run store', () => {
  it('writes a metric batch idempotently: the same batch twice stays one row per step', async () => {
    expect(await store.writeMetrics(lease, points([0, 1, 2]))).toBe(3);
    expect(await store.writeMetrics(lease, points([0, 1, 2]))).toBe(0);
    expect(await store.writeMetrics(lease, points([2, 3]))).toBe(1);
    const rows = await db.prisma.metricPoint.findMany({
      where: { runId },
      orderBy: { step: 'asc' },
    });
    expect(rows.map((r) => r.step)).toEqual([0, 1, 2, 3]);
  });

  it('refuses a metric batch that would give the run more series than its cap, whole', async () => {
    const capped = createRunStore(db.prisma, artifactStore, { maxSeriesPerRun: 3 });
    const named = (names: string[]) =>
      names.map((name) => ({ name, step: 0, value: 1, time: Date.now() }));
    expect(await capped.writeMetrics(lease, named(['a', 'b']))).toBe(2);
    await expect(capped.writeMetrics(lease, named(['a', 'c', 'd']))).rejects.toThrow(
      SeriesLimitError,
    );
    await expect(capped.writeMetrics(lease, named(['c', 'd']))).rejects.toThrow(/at most 3/);
    expect(await db.prisma.metricPoint.count({ where: { runId } })).toBe(2);
    expect(await capped.writeMetrics(lease, named(['c']))).toBe(1);
    // Two batches racing for the last series of a cap of 4: exactly one gets it.
    const four = createRunStore(db.prisma, artifactStore, { maxSeriesPerRun: 4 });
    const race = await Promise.allSettled([
      four.writeMetrics(lease, named(['e'])),
      four.writeMetrics(lease, named(['f'])),
    ]);
    expect(race.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('moves a run queued → running → succeeded, and never claims a finished or cancelled run', async () => {
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({
      status: 'running',
      device: 'cpu:0',
      lease: lease.token,
    });
    await lifecycle.succeed(lease, {
      steps: 1,
      epochs: 1,
      finalLoss: 1,
      valAccuracy: 0.5,
      valTop5: 1,
      imagesPerSec: 10,
      backend: 'wasm',
    });
    const done = await db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect(done).toMatchObject({ status: 'succeeded', workerId: 'w1', attempts: 1 });
    expect(done.finishedAt).not.toBeNull();
    // At-least-once delivery: no rerun.
    expect(await lifecycle.claim(runId, { workerId: 'w2', attempt: 2 })).toBeNull();

    const cancelled = (
      await db.prisma.run.create({ data: { kind: 'train', config: {}, status: 'cancelled' } })
    ).id;
    expect(await lifecycle.claim(cancelled, { workerId: 'w1', attempt: 1 })).toBeNull();
  });

  it('puts a failed attempt back to queued, and a final failure to failed with its cause', async () => {
    await lifecycle.requeue(lease, {
      name: 'Error',
      message: 'redis blip',
      attempt: 1,
      unrecoverable: false,
    });
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({
      status: 'queued',
      workerId: null,
    });
    const second = (await lifecycle.claim(runId, { workerId: 'w1', attempt: 2 }))!;
    await lifecycle.fail(second, {
      name: 'Error',
      message: 'bad data',
      attempt: 2,
      unrecoverable: true,
    });
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: { message: 'bad data', unrecoverable: true },
    });
  });

  it('keeps the latest and the best checkpoints, deleting the rest with their bytes in the artifact store', async () => {
    const artifacts = artifactStore;
    const accuracy = [0.5, 0.9, 0.6, 0.7, 0.65];
    // 1.5 MiB per file: two chunk rows each, so the chunks are seen to go too.
    const file = new Uint8Array(1536 * 1024).fill(7);
    for (const [i, acc] of accuracy.entries()) {
      const location = `runs/${runId}/step-${(i + 1) * 10}`;
      await artifacts.put(`${location}/weights.bin`, [file]);
      await artifacts.put(`${location}/manifest.json`, [new TextEncoder().encode('{}')]);
      await store.recordCheckpoint(lease, {
        step: (i + 1) * 10,
        epoch: i,
        location,
        bytes: file.byteLength,
        sha256: 'x',
        metrics: { 'val/accuracy': acc },
      });
    }
    expect(await db.prisma.artifactChunk.count()).toBe(5 * 3);
    const deleted = await store.applyRetention(lease, {
      keepLatest: 2,
      keepBest: 1,
      metric: 'val/accuracy',
    });
    expect(deleted).toEqual([10, 30]);
    const kept = await db.prisma.checkpoint.findMany({
      where: { runId },
      orderBy: { step: 'asc' },
    });
    expect(kept.map((c) => c.step)).toEqual([20, 40, 50]);
    const files = (await artifacts.list(`runs/${runId}`)).map((a) => a.key);
    expect(files).toEqual(
      [20, 40, 50].flatMap((step) => [
        `runs/${runId}/step-${step}/manifest.json`,
        `runs/${runId}/step-${step}/weights.bin`,
      ]),
    );
    expect(await db.prisma.artifact.count()).toBe(3 * 2);
    expect(await db.prisma.artifactChunk.count()).toBe(3 * 3);
    await artifacts.delete('runs');
  });

  it('on resume from step s, deletes the metric points from s on and records resumedFromStep', async () => {
    await store.writeMetrics(lease, points([0, 1, 2, 3, 4, 5]));
    for (const step of [2, 4]) {
      await store.recordCheckpoint(lease, {
        step,
        epoch: 0,
        location: `/ckpt/${step}`,
        bytes: 1,
        sha256: 'x',
        metrics: {},
      });
    }
    expect(await store.checkpointLocations(runId)).toEqual(['/ckpt/4', '/ckpt/2']);
    await store.markResumed(lease, 4);
    const steps = (
      await db.prisma.metricPoint.findMany({ where: { runId }, orderBy: { step: 'asc' } })
    ).map((p) => p.step);
    expect(steps).toEqual([0, 1, 2, 3]);
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id: runId } })).resumedFromStep).toBe(
      4,
    );
  });

  it('fences a stale attempt: once another worker claims the run, the old lease writes nothing', async () => {
    await store.writeMetrics(lease, points([0, 1]));
    // The job was delivered again (lost lock): a second worker claims the running run.
    const second = (await lifecycle.claim(runId, { workerId: 'w2', attempt: 1 }))!;
    await expect(store.writeMetrics(lease, points([2, 3], 100))).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    await expect(
      store.updateProgress(lease, { step: 3, totalSteps: 9, epoch: 0 }),
    ).rejects.toBeInstanceOf(LeaseLostError);
    await expect(store.heartbeat(lease)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(
      store.recordCheckpoint(lease, {
        step: 2,
        epoch: 0,
        location: '/old',
        bytes: 1,
        sha256: 'x',
        metrics: {},
      }),
    ).rejects.toBeInstanceOf(LeaseLostError);
    await expect(
      lifecycle.fail(lease, { name: 'E', message: 'late', attempt: 1, unrecoverable: true }),
    ).rejects.toBeInstanceOf(LeaseLostError);
    // The new owner writes as usual.
    expect(await store.writeMetrics(second, points([2, 3]))).toBe(2);
    await store.heartbeat(second);
    const rows = await db.prisma.metricPoint.findMany({
      where: { runId },
      orderBy: { step: 'asc' },
    });
    expect(rows.map((r) => [r.step, r.value])).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
    expect(await db.prisma.checkpoint.count({ where: { runId } })).toBe(0);
    expect(await db.prisma.run.findUniqueOrThrow({ where: { id: runId } })).toMatchObject({
      status: 'running',
      workerId: 'w2',
    });
  });

  it('treats metrics ending in loss as lower-is-better when keeping the best', () => {
    const cps = [1, 2, 3, 4].map((step) => ({
      step,
      metrics: { 'val/loss': [0.3, 0.1, 0.5, 0.4][step - 1] },
    }));
    expect(
      checkpointsToDelete(cps, { keepLatest: 1, keepBest: 1, metric: 'val/loss' }).map(
        (c) => c.step,
      ),
    ).toEqual([3, 1]);
  });
});
