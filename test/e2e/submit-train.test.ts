/**
 * The whole path as a user takes it: POST a run to the real API, a real worker process takes the
 * job from Redis, trains in its child process, and Postgres ends up with the run's metrics,
 * checkpoints and result.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { getJson, postJson, startApi } from '../helpers/api.js';
import { createTestDatabase } from '../helpers/database.js';
import { Redis } from 'ioredis';
import { runEventChannel, type RunEvent } from '../../src/queue/run-events.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';
import {
  startWorkerProcess,
  waitFor as waitForValue,
  type WorkerProcess,
} from '../helpers/worker-process.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: Awaited<ReturnType<typeof startApi>>;
let worker: WorkerProcess;
let artifacts: string;
/** Every worker started so far; their logs read as one. */
const workers: WorkerProcess[] = [];
const workerLog = (): string => workers.map((w) => w.log()).join('');

beforeAll(async () => {
  db = await createTestDatabase('e2e');
  queue = await createTestQueue('e2e');
  api = await startApi(db, queue.queue);
  artifacts = await mkdtemp(path.join(os.tmpdir(), 'gq-e2e-'));
  worker = startWorker();
});

/** A real worker process on this file's database, queue prefix and scratch directory. */
function startWorker(): WorkerProcess {
  const started = startWorkerProcess({
    DATABASE_URL: db.url,
    REDIS_URL,
    QUEUE_PREFIX: queue.prefix,
    SCRATCH_ROOT: artifacts,
    TRAIN_BACKEND: 'wasm',
    TRAIN_THREADS: '1',
  });
  workers.push(started);
  return started;
}

afterAll(async () => {
  for (const w of workers) await w.terminate();
  await api?.close();
  await queue?.close();
  await db?.drop();
  await rm(artifacts, { recursive: true, force: true });
});

function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number) {
  return waitForValue(what, probe, timeoutMs, () => `worker log:\n${workerLog().slice(-4000)}`);
}

/** Submits a run far longer than any test waits for, and returns once it has trained `steps`. */
async function startLongRun(name: string, steps: number): Promise<string> {
  const submitted = await postJson(`${api.url}/v1/runs`, {
    kind: 'train',
    name,
    model: { arch: 'googlenet', numClasses: 10, inputSize: 32, width: 0.25 },
    dataset: { format: 'synthetic', numClasses: 10, size: 512, seed: 7 },
    train: { epochs: 100, batchSize: 32, optimizer: { type: 'adam', learningRate: 0.002 } },
  });
  const id: string = submitted.json.id;
  await waitFor(
    'training to be under way',
    async () => {
      const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
      return run.status === 'running' && (run.progress?.step ?? 0) >= steps ? run : undefined;
    },
    60_000,
  );
  return id;
}

describe('submit → queue → worker → Postgres', () => {
  it('trains a quarter-width 32x32 run on a 512-image synthetic set: loss falls, val/accuracy reported, checkpoints listed', async () => {
    const submitted = await postJson(`${api.url}/v1/runs`, {
      kind: 'train',
      name: 'e2e',
      model: { arch: 'googlenet', numClasses: 10, inputSize: 32, width: 0.25 },
      dataset: { format: 'synthetic', numClasses: 10, size: 512, seed: 7 },
      train: {
        epochs: 3,
        batchSize: 32,
        optimizer: { type: 'adam', learningRate: 0.002 },
        seed: 1,
      },
      checkpoint: { everySteps: 10, keepLatest: 2 },
    });
    expect(submitted.status).toBe(201);
    const id: string = submitted.json.id;
    // The worker's live events, as any API replica's event stream relays them.
    const subscriber = new Redis(REDIS_URL);
    const events: RunEvent[] = [];
    subscriber.on('message', (_channel: string, message: string) =>
      events.push(JSON.parse(message) as RunEvent),
    );
    await subscriber.subscribe(runEventChannel(queue.prefix, id));

    const running = await waitFor(
      'the run to start',
      async () => {
        const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
        return run.status !== 'queued' ? run : undefined;
      },
      60_000,
    );
    expect(['running', 'succeeded']).toContain(running.status);

    const done = await waitFor(
      'the run to finish',
      async () => {
        const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
        return ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
      },
      180_000,
    );
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    // The worker published what it wrote: progress, metric batches, checkpoints, the end.
    await new Promise((r) => setTimeout(r, 200));
    await subscriber.quit();
    const kinds = new Set(events.map((e) => e.type));
    expect([...kinds].sort()).toEqual(['checkpoint', 'metrics', 'progress', 'status']);
    expect(events.filter((e) => e.type === 'status').at(-1)).toMatchObject({
      status: 'succeeded',
    });
    // 512 images, 10% validation: 461 training images, 14 steps of 32 per epoch, 3 epochs.
    expect(done).toMatchObject({
      backend: 'wasm',
      attempts: 1,
      progress: { step: 42, totalSteps: 42 },
      result: { steps: 42, epochs: 3 },
    });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();

    const metrics = (
      await getJson(`${api.url}/v1/runs/${id}/metrics?names=train/loss,val/accuracy,val/loss`)
    ).json;
    const series = Object.fromEntries(
      metrics.series.map((s: { name: string; points: Array<{ step: number; value: number }> }) => [
        s.name,
        s.points,
      ]),
    );
    const loss: Array<{ step: number; value: number }> = series['train/loss'];
    expect(loss.map((p) => p.step)).toEqual(Array.from({ length: 42 }, (_, i) => i));
    const mean = (xs: Array<{ value: number }>): number =>
      xs.reduce((a, p) => a + p.value, 0) / xs.length;
    expect(mean(loss.slice(-5))).toBeLessThan(mean(loss.slice(0, 5)));
    expect(series['val/accuracy'].map((p: { step: number }) => p.step)).toEqual([13, 27, 41]);
    expect(series['val/accuracy'].at(-1).value).toBeGreaterThan(0.1);

    // Per-epoch training figures and the process's own cost, beside the step metrics.
    const more = Object.fromEntries(
      (
        await getJson(
          `${api.url}/v1/runs/${id}/metrics?names=train/accuracy,train/top5,train/epoch_loss,system/rss_mb,system/tensor_mb`,
        )
      ).json.series.map((s: { name: string; points: Array<{ step: number; value: number }> }) => [
        s.name,
        s.points,
      ]),
    );
    for (const name of ['train/accuracy', 'train/top5', 'train/epoch_loss'])
      expect(
        more[name].map((p: { step: number }) => p.step),
        name,
      ).toEqual([13, 27, 41]);
    more['train/top5'].forEach((p: { value: number }, i: number) =>
      expect(p.value).toBeGreaterThanOrEqual(more['train/accuracy'][i].value),
    );
    expect(more['train/top5'].at(-1).value).toBeLessThanOrEqual(1);
    expect(more['train/epoch_loss'].at(-1).value).toBeLessThan(more['train/epoch_loss'][0].value);
    // Written with train/loss; a GoogLeNet under tfjs holds tens of MB at least.
    expect(more['system/rss_mb'].map((p: { step: number }) => p.step)).toEqual(
      loss.map((p) => p.step),
    );
    expect(more['system/rss_mb'].at(-1).value).toBeGreaterThan(50);
    expect(more['system/tensor_mb'].at(-1).value).toBeGreaterThan(1);

    const checkpoints = (await getJson(`${api.url}/v1/runs/${id}/checkpoints`)).json.items;
    // Every 10 steps and at the end (42); retention keeps the latest two.
    expect(checkpoints.map((c: { step: number }) => c.step)).toEqual([40, 42]);
    // The bytes live in the artifact store (Postgres by default), not on the worker's disk.
    const store = createPostgresArtifactStore(db.url);
    const stored = await store.list(`runs/${id}`);
    await store.close();
    const steps = new Set(stored.map((a) => a.key.split('/')[2]));
    expect([...steps].sort()).toEqual(['step-40', 'step-42']);
    expect(stored.filter((a) => a.key.endsWith('/manifest.json'))).toHaveLength(2);
    expect(await readdir(artifacts)).not.toContain(id);
    expect(await readdir(path.join(artifacts, 'runs')).catch(() => [])).not.toContain(id);

    const queues = (await getJson(`${api.url}/v1/queues`)).json;
    expect(queues.workers).toHaveLength(1);
    expect(queues.workers[0].backend).toBe('wasm'); // what was loaded, not the preference
    expect(queues.queues[0].counts.completed).toBe(1);
  });

  it('cancels a running run within 10 s: the worker stops it between steps, marks it cancelled, no retry', async () => {
    const id = await startLongRun('to-cancel', 2);
    // The queue panel's view of it: the active job, its worker and device.
    const { active } = (await getJson(`${api.url}/v1/queues`)).json;
    expect(active).toEqual([
      expect.objectContaining({
        runId: id,
        job: 'train',
        attempt: 1,
        runName: 'to-cancel',
        workerId: expect.any(String),
        device: expect.stringMatching(/^cpu/),
      }),
    ]);
    expect(active[0].progress.step).toBeGreaterThanOrEqual(2);
    const requested = Date.now();
    const res = await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    expect(res.status).toBe(202);
    const cancelled = await waitFor(
      'the run to be cancelled',
      async () => {
        const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
        return run.status === 'cancelled' ? run : undefined;
      },
      10_000,
    );
    expect(Date.now() - requested).toBeLessThan(10_000);
    expect(cancelled.attempts).toBe(1);
    expect(cancelled.progress.step).toBeLessThan(cancelled.progress.totalSteps);
    const job = await queue.queue.getJob(id);
    expect(await job?.getState()).toBe('completed'); // done with, not failed and retried
  });

  it('on SIGTERM mid-run, checkpoints, requeues the run without spending an attempt and exits 0; the next worker resumes it', async () => {
    const id = await startLongRun('long', 3);

    const exited = worker.terminate().then((r) => r.code);
    const started = Date.now();
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);

    const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
    expect(run).toMatchObject({ status: 'queued', workerId: null });
    expect(run.progress.step).toBeLessThan(run.progress.totalSteps);
    const job = await queue.queue.getJob(id);
    expect(job?.attemptsMade).toBe(0);
    expect(['delayed', 'waiting', 'prioritized']).toContain(await job?.getState());

    // Every worker log line is JSON, and lines about a run carry its ids.
    expect(workerLog()).toMatch(/"msg":"stopped"/);
    const lines = workerLog()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const runLines = lines.filter((l) => 'runId' in l);
    expect(runLines.length).toBeGreaterThan(0);
    expect(
      runLines.every((l) => l['jobId'] === l['runId'] && typeof l['workerId'] === 'string'),
    ).toBe(true);
    expect(
      lines.some(
        (l) => l['msg'] === 'worker shutting down; run put back in the queue' && l['runId'] === id,
      ),
    ).toBe(true);

    // The shutdown saved a checkpoint at the step where training stopped...
    const stoppedAt: number = run.progress.step;
    const checkpoints = (await getJson(`${api.url}/v1/runs/${id}/checkpoints`)).json.items;
    expect(checkpoints.map((c: { step: number }) => c.step)).toContain(stoppedAt);
    // ...from which the next worker continues, rewriting nothing twice and leaving no gap.
    worker = startWorker();
    const resumed = await waitFor(
      'another worker to resume the run',
      async () => {
        const r = (await getJson(`${api.url}/v1/runs/${id}`)).json;
        return r.status === 'running' &&
          r.resumedFromStep === stoppedAt &&
          r.progress?.step >= stoppedAt + 2
          ? r
          : undefined;
      },
      60_000,
    );
    expect(resumed.attempts).toBe(1);
    await postJson(`${api.url}/v1/runs/${id}/cancel`, {});
    await waitFor(
      'the run to be cancelled',
      async () => {
        const r = (await getJson(`${api.url}/v1/runs/${id}`)).json;
        return r.status === 'cancelled' ? r : undefined;
      },
      15_000,
    );
    const loss = (
      await getJson(`${api.url}/v1/runs/${id}/metrics?names=train/loss&maxPoints=10000`)
    ).json.series[0].points;
    const steps = loss.map((p: { step: number }) => p.step);
    expect(steps.length).toBeGreaterThan(stoppedAt + 1);
    expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i));
  });
});
