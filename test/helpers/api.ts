import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { pino } from 'pino';
import type { Queue, QueueEvents } from 'bullmq';
import type { Express } from 'express';
import { Redis, type RedisOptions } from 'ioredis';
import { createApp, type AppConfig } from '../../src/api/app.js';
import { createApiKeyStore, type ApiKeyStore } from '../../src/api/auth/api-key-store.js';
import { createRunModelsService } from '../../src/api/models/run-models.service.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { createRunEventHub } from '../../src/api/events/run-event-hub.js';
import { createCancelRequests } from '../../src/queue/cancel-requests.js';
import { loadConfig } from '../../src/config.js';
import type { RetryPolicy } from '../../src/queue/enqueue-run.js';
import { REDIS_URL } from './queue.js';
import type { PrismaClient } from '../../src/db/index.js';

/**
 * The key the last startApi() created (all scopes). postJson/getJson send it unless told
 * otherwise, so tests that are not about authentication need not think about it.
 */
let defaultApiKey: string | undefined;

export interface TestApi {
  url: string;
  app: Express;
  /** A live key with every scope. */
  key: string;
  apiKeys: ApiKeyStore;
  close(): Promise<void>;
}

export interface TestApiOptions {
  /** Another Redis than REDIS_URL (one the test restarts). */
  redisUrl?: string;
  /** The jobs' retry policy. */
  retry?: RetryPolicy;
  /** BullMQ events for the Prometheus job counters. */
  jobEvents?: QueueEvents;
  /** Largest predict body. @defaultValue 10 MiB */
  maxImageBytes?: number;
  /** Where model downloads go. @defaultValue the OS temporary directory */
  scratchRoot?: string;
  /** @defaultValue 512 MiB */
  modelCacheBytes?: number;
  /** Threads that decode images and run models (PREDICT_THREADS). @defaultValue 1 */
  predictThreads?: number;
  /** Model requests that may wait for a thread (PREDICT_QUEUE_LENGTH). @defaultValue 16 */
  predictQueueLength?: number;
  /** Options of the app's Redis connection (main.ts: no offline queue, one retry). */
  redisOptions?: RedisOptions;
}

/**
 * The real app on `db` at an ephemeral port, with a silent logger, a fresh admin key and the
 * postgres artifact store. Config comes from the defaults in src/config.ts (with QUEUE_PREFIX =
 * the queue's), overridable per test.
 */
export async function startApi(
  db: { prisma: PrismaClient; url: string },
  queue: Queue,
  overrides: Partial<AppConfig> = {},
  options: TestApiOptions = {},
): Promise<TestApi> {
  const { prisma } = db;
  const prefix = queue.opts.prefix ?? 'bull';
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const cancels = createCancelRequests(redisUrl, prefix);
  const redis = new Redis(redisUrl, options.redisOptions ?? {});
  redis.on('error', () => undefined); // reconnects by itself; tests that restart Redis expect it
  const apiKeys = createApiKeyStore(prisma);
  const { key } = await apiKeys.create({
    name: `test-admin-${randomBytes(4).toString('hex')}`,
    scopes: ['admin'],
  });
  defaultApiKey = key;
  const config: AppConfig = { ...loadConfig({}), QUEUE_PREFIX: prefix, ...overrides };
  const logger = pino({ level: 'silent' });
  const artifacts = createPostgresArtifactStore(db.url);
  const models = createRunModelsService({
    prisma,
    artifacts,
    config: {
      MODEL_CACHE_BYTES: options.modelCacheBytes ?? 512 * 1024 * 1024,
      SCRATCH_ROOT: options.scratchRoot ?? os.tmpdir(),
      TRAIN_BACKEND: 'wasm',
      TRAIN_THREADS: 1,
      PREDICT_THREADS: options.predictThreads ?? 1,
      PREDICT_QUEUE_LENGTH: options.predictQueueLength ?? 16,
    },
    logger,
  });
  const eventHub = createRunEventHub(redis, prefix);
  const app = createApp({
    eventHub,
    models,
    maxImageBytes: options.maxImageBytes ?? 10 * 1024 * 1024,
    prisma,
    queue,
    cancels,
    redis,
    apiKeys,
    config,
    logger,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.jobEvents ? { jobEvents: options.jobEvents } : {}),
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    key,
    apiKeys,
    close: async () => {
      // Event streams stay open until their clients go: end them so close() returns.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 1000).unref();
      await closed;
      await eventHub.close();
      await cancels.close();
      await redis.quit();
      await models.close();
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

/** `Authorization` for the default key, unless the caller set one (or `authorization: ''` for none). */
function withAuth(headers: Record<string, string>): Record<string, string> {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  if ('authorization' in lower) {
    if (lower['authorization'] === '') delete lower['authorization'];
    return lower;
  }
  return defaultApiKey ? { ...lower, authorization: `Bearer ${defaultApiKey}` } : lower;
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: withAuth({ 'content-type': 'application/json', ...headers }),
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

export async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { headers: withAuth(headers) });
  return { status: res.status, json: await res.json(), headers: res.headers };
}
