/**
 * When something inside fails (here: Postgres answers that the database does not exist), the
 * client gets a bare 500 problem and the log gets the cause: no SQL, driver message, database
 * name, stack or file path crosses the wire.
 */
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { createRunModelsService } from '../../src/api/models/run-models.service.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { createApiKeyStore } from '../../src/api/auth/api-key-store.js';
import { createCancelRequests } from '../../src/queue/cancel-requests.js';
import { loadConfig } from '../../src/config.js';
import { createPrismaClient, type PrismaClient } from '../../src/db/index.js';
import { withDatabase } from '../../src/db/databases.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let missing: PrismaClient;
let server: Server;
let url: string;
let key: string;
let redis: Redis;
let cancels: ReturnType<typeof createCancelRequests>;
let log = '';
let artifacts: ReturnType<typeof createPostgresArtifactStore>;
let models: ReturnType<typeof createRunModelsService>;

beforeAll(async () => {
  db = await createTestDatabase('api_internal_errors');
  queue = await createTestQueue('api-internal-errors');
  const apiKeys = createApiKeyStore(db.prisma);
  key = (await apiKeys.create({ name: 'k', scopes: ['admin'] })).key;
  // Keys come from the real database; everything else from one that does not exist.
  missing = createPrismaClient(withDatabase(loadConfig().DATABASE_URL, 'gq_no_such_database_x'));
  redis = new Redis(REDIS_URL);
  cancels = createCancelRequests(REDIS_URL, queue.prefix);
  const sink = new Writable({
    write(chunk, _encoding, done) {
      log += chunk.toString();
      done();
    },
  });
  const logger = pino({ level: 'error' }, sink);
  artifacts = createPostgresArtifactStore(db.url);
  models = createRunModelsService({
    prisma: missing,
    artifacts,
    config: {
      MODEL_CACHE_BYTES: 1024 * 1024,
      SCRATCH_ROOT: os.tmpdir(),
      TRAIN_BACKEND: 'cpu',
      TRAIN_THREADS: 1,
      PREDICT_THREADS: 1,
      PREDICT_QUEUE_LENGTH: 1,
    },
    logger,
  });
  const app = createApp({
    models,
    maxImageBytes: 1024 * 1024,
    prisma: missing,
    queue: queue.queue,
    cancels,
    redis,
    apiKeys,
    config: { ...loadConfig({}), QUEUE_PREFIX: queue.prefix },
    logger,
  });
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await models?.close();
  await artifacts?.close();
  await new Promise((resolve) => server?.close(resolve));
  await missing?.$disconnect();
  await cancels?.close();
  await redis?.quit();
  await queue?.close();
  await db?.drop();
});

describe('an internal failure', () => {
  it('answers a bare 500 problem and logs the cause', async () => {
    const res = await fetch(`${url}/v1/runs/00000000-0000-4000-8000-000000000000`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      type: 'urn:googlenet-queue:problem:internal',
      title: 'Internal Server Error',
      status: 500,
      detail: 'the server could not complete the request',
    });
    expect(log).toMatch(/unhandled error/);
    expect(log).toMatch(/gq_no_such_database_x|does not exist/);
    // The health check still answers, and readiness says what is wrong.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ postgres: 'unreachable', redis: 'ok' });
  });
});
