import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { pino } from 'pino';
import type { Queue } from 'bullmq';
import { createApp } from '../../src/api/app.js';
import { createRunModelsService } from '../../src/api/models/run-models.service.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { createCancelRequests } from '../../src/cancel-requests.js';
import { REDIS_URL } from './queue.js';
import type { PrismaClient } from '../../src/db/index.js';

export interface TestApiOptions {
  /** Largest predict body. @defaultValue 10 MiB */
  maxImageBytes?: number;
  /** Where model downloads go. @defaultValue the OS temporary directory */
  scratchRoot?: string;
  /** @defaultValue 512 MiB */
  modelCacheBytes?: number;
}

/** The real app on `db` at an ephemeral port, with a silent logger and the postgres artifact store. */
export async function startApi(
  db: { prisma: PrismaClient; url: string },
  queue: Queue,
  options: TestApiOptions = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const { prisma } = db;
  const artifacts = createPostgresArtifactStore(db.url);
  const cancels = createCancelRequests(REDIS_URL, queue.opts.prefix ?? 'bull');
  const logger = pino({ level: 'silent' });
  const models = createRunModelsService({
    prisma,
    artifacts,
    config: {
      MODEL_CACHE_BYTES: options.modelCacheBytes ?? 512 * 1024 * 1024,
      SCRATCH_ROOT: options.scratchRoot ?? os.tmpdir(),
      TRAIN_BACKEND: 'wasm',
      TRAIN_THREADS: 1,
    },
    logger,
  });
  const app = createApp({
    prisma,
    queue,
    cancels,
    logger,
    models,
    maxImageBytes: options.maxImageBytes ?? 10 * 1024 * 1024,
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cancels.close();
      models.close();
      await artifacts.close();
    },
  };
}

/** A small valid training body; override pieces per test. */
export function trainBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'train',
    name: 'tiny',
    model: { arch: 'googlenet', numClasses: 4, inputSize: 32, width: 0.125 },
    dataset: { format: 'synthetic', numClasses: 4, size: 64, seed: 1 },
    train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
    ...overrides,
  };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

export async function getJson(url: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url);
  return { status: res.status, json: await res.json() };
}
