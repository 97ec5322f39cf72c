/**
 * The set-up every fault-injection test shares: a database and queue prefix of its own, the real
 * API in-process, real worker processes with short lock timings, and the checks each fault test
 * makes afterwards (every metric step exactly once, no checkpoint twice).
 */
import type { Job, Queue } from 'bullmq';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { getJson, postJson, startApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';
import { startWorkerProcess, waitFor, type WorkerProcess } from '../helpers/worker-process.js';

/**
 * Worker timings for tests: a dead worker's job is free again after at most 4 s + 2 s (the
 * defaults, 60 s + 30 s, suit jobs that run for days).
 */
export const FAST_WORKER_ENV = {
  WORKER_LOCK_MS: '4000',
  WORKER_STALLED_INTERVAL_MS: '2000',
  TRAIN_BACKEND: 'wasm',
  TRAIN_THREADS: '1',
  METRICS_EVERY_STEPS: '1',
  WORKER_GPUS: 'none',
} as const;

/**
 * Prints a fault test's measured figures (`[fault N] ...`) in the vitest output, where the
 * closing note reads them. Test output, not product logging: the product logs through pino.
 */
export function reportFigures(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Steps between checkpoints in fault runs. */
export const CHECKPOINT_EVERY = 5;

/**
 * A tiny run of `epochs` x 20 steps (180 training images, batch 9), checkpointed every
 * CHECKPOINT_EVERY steps and keeping them all, so tests can look at each.
 */
export function faultRunBody(name: string, epochs = 3): Record<string, unknown> {
  return {
    kind: 'train',
    name,
    model: { arch: 'googlenet', numClasses: 4, inputSize: 32, width: 0.125 },
    dataset: { format: 'synthetic', numClasses: 4, size: 200, seed: 11, valFraction: 0.1 },
    train: {
      epochs,
      batchSize: 9,
      optimizer: { type: 'sgd', learningRate: 0.05, momentum: 0.9 },
      seed: 3,
    },
    checkpoint: { everySteps: CHECKPOINT_EVERY, keepLatest: 100 },
  };
}
export const STEPS_PER_EPOCH = 20;

export interface RunView {
  id: string;
  status: string;
  attempts: number;
  resumedFromStep: number | null;
  workerId: string | null;
  device: string | null;
  progress: { step: number; totalSteps: number; epoch: number } | null;
  error: { name: string; message: string } | null;
}

export interface FaultRig {
  db: TestDatabase;
  prefix: string;
  apiUrl: string;
  workers: WorkerProcess[];
  startWorker(env?: Record<string, string>, artifactRoot?: string): WorkerProcess;
  submit(body: Record<string, unknown>): Promise<string>;
  run(id: string): Promise<RunView>;
  waitForRun(
    id: string,
    what: string,
    test: (run: RunView) => boolean,
    timeoutMs?: number,
  ): Promise<RunView>;
  /** Highest train/loss step stored for the run (-1 if none). */
  lastMetricStep(id: string): Promise<number>;
  /** Steps of the run's checkpoint rows, ascending. */
  checkpointSteps(id: string): Promise<number[]>;
  /** Asserts the stored series have every step exactly once, as an uninterrupted run would. */
  expectCompleteMetrics(id: string, totalSteps: number): Promise<void>;
  /** The training queue under this rig's prefix. */
  queue: Queue;
  /** The run's BullMQ job, if the queue still has it. */
  queueJob(id: string): Promise<Job | undefined>;
  /** Runs the database says are queued or running. */
  activeRunIds(): Promise<string[]>;
  logs(): string;
  /** kill -9 of every worker still running (between tests, so one test's failure stays its own). */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

export async function createFaultRig(
  label: string,
  services: {
    databaseServerUrl?: string;
    redisUrl?: string;
    workerEnv?: Record<string, string>;
    /** Tries per job (default 3). */
    attempts?: number;
  } = {},
): Promise<FaultRig> {
  const redisUrl = services.redisUrl ?? REDIS_URL;
  const db = await createTestDatabase(label, services.databaseServerUrl);
  const queue = await createTestQueue(label, redisUrl);
  // Retries come quickly in tests (the default backoff starts at 5 s).
  const retry = { attempts: services.attempts ?? 3, backoffMs: 300 };
  const api = await startApi(db, queue.queue, {}, { redisUrl, retry });
  const artifacts = await mkdtemp(path.join(os.tmpdir(), `gq-fault-${label}-`));
  const workers: WorkerProcess[] = [];

  const logs = () => workers.map((w, i) => `--- worker ${i}\n${w.log().slice(-3000)}`).join('\n');
  const stopWorkers = async (): Promise<void> => {
    await Promise.all(
      workers.map(async (w) => {
        if (w.proc.exitCode === null && w.proc.signalCode === null) w.killTree();
        await w.exited;
      }),
    );
  };
  const run = async (id: string) => (await getJson(`${api.url}/v1/runs/${id}`)).json as RunView;

  return {
    db,
    prefix: queue.prefix,
    apiUrl: api.url,
    workers,
    startWorker(env = {}, artifactRoot = artifacts) {
      const worker = startWorkerProcess({
        ...FAST_WORKER_ENV,
        DATABASE_URL: db.url,
        REDIS_URL: redisUrl,
        QUEUE_PREFIX: queue.prefix,
        // Checkpoints go to the postgres artifact store (the default); this is the host's scratch.
        ARTIFACT_ROOT: artifactRoot,
        SCRATCH_ROOT: path.join(artifactRoot, 'scratch'),
        JOB_ATTEMPTS: String(retry.attempts),
        JOB_BACKOFF_MS: String(retry.backoffMs),
        ...services.workerEnv,
        ...env,
      });
      workers.push(worker);
      return worker;
    },
    async submit(body) {
      const res = await postJson(`${api.url}/v1/runs`, body);
      expect(res.status, JSON.stringify(res.json)).toBe(201);
      return res.json.id as string;
    },
    run,
    waitForRun(id, what, test, timeoutMs = 60_000) {
      return waitFor(
        what,
        async () => {
          const r = await run(id);
          return test(r) ? r : undefined;
        },
        timeoutMs,
        logs,
      );
    },
    async lastMetricStep(id) {
      const last = await db.prisma.metricPoint.findFirst({
        where: { runId: id, name: 'train/loss' },
        orderBy: { step: 'desc' },
      });
      return last?.step ?? -1;
    },
    async checkpointSteps(id) {
      const rows = await db.prisma.checkpoint.findMany({
        where: { runId: id },
        orderBy: { step: 'asc' },
      });
      return rows.map((c) => c.step);
    },
    async expectCompleteMetrics(id, totalSteps) {
      const rows = await db.prisma.metricPoint.findMany({
        where: { runId: id },
        select: { name: true, step: true },
      });
      const byName = new Map<string, number[]>();
      for (const r of rows) byName.set(r.name, [...(byName.get(r.name) ?? []), r.step]);
      const everyStep = Array.from({ length: totalSteps }, (_, i) => i);
      for (const name of ['train/loss', 'train/lr', 'train/images_per_sec']) {
        expect(
          (byName.get(name) ?? []).sort((a, b) => a - b),
          name,
        ).toEqual(everyStep);
      }
      // Epoch metrics: once per epoch, at the epoch's last step.
      const epochEnds = Array.from(
        { length: totalSteps / STEPS_PER_EPOCH },
        (_, e) => (e + 1) * STEPS_PER_EPOCH - 1,
      );
      for (const name of ['train/accuracy', 'val/accuracy', 'val/loss']) {
        expect(
          (byName.get(name) ?? []).sort((a, b) => a - b),
          name,
        ).toEqual(epochEnds);
      }
    },
    queue: queue.queue,
    queueJob: (id) => queue.queue.getJob(id),
    async activeRunIds() {
      const rows = await db.prisma.run.findMany({
        where: { status: { in: ['queued', 'running'] } },
        select: { id: true },
      });
      return rows.map((r) => r.id);
    },
    logs,
    stopWorkers,
    async close() {
      await stopWorkers();
      await api.close();
      await queue.close();
      await db.drop();
      await rm(artifacts, { recursive: true, force: true });
    },
  };
}

/**
 * A rig for the calling test file: created before its tests, workers stopped after each test (so
 * one test's failure stays its own), removed after the file. Call the result inside a test.
 */
export function useFaultRig(
  label: string,
  services?: Parameters<typeof createFaultRig>[1],
): () => FaultRig {
  let rig: FaultRig | undefined;
  beforeAll(async () => {
    rig = await createFaultRig(label, services);
  });
  afterEach(async () => {
    await rig?.stopWorkers();
  });
  afterAll(async () => {
    await rig?.close();
  });
  return () => {
    if (!rig) throw new Error('the fault rig is only there inside tests');
    return rig;
  };
}

/** Kills when the run has a checkpoint at k and has stored steps just past it (k+1..k+3). */
export async function waitForKillPoint(
  rig: FaultRig,
  id: string,
  afterCheckpoint: number,
): Promise<{ checkpoint: number; lastStep: number }> {
  return waitFor(
    `run ${id} to pass checkpoint ${afterCheckpoint}`,
    async () => {
      const steps = await rig.checkpointSteps(id);
      const last = await rig.lastMetricStep(id);
      const checkpoint = steps.filter((s) => s >= afterCheckpoint).pop();
      return checkpoint !== undefined && last > checkpoint
        ? { checkpoint, lastStep: last }
        : undefined;
    },
    60_000,
    rig.logs,
  );
}
