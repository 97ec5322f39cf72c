/**
 * The real API as a child process for a benchmark: a scratch database (migrated) on
 * DATABASE_URL and a scratch queue prefix on REDIS_URL, one API key, no rate limit. `stop()`
 * ends the process and removes the database and the prefix's keys.
 *
 * A separate process, not an in-process app, so that the benchmark's own work (serializing,
 * driving a browser) does not share the API's event loop, and the API's CPU time can be read
 * from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { createDatabase, dropDatabase, withDatabase } from '../src/db/databases.js';
import { migrateDatabase } from '../src/db/index.js';
import { freePort } from '../test/helpers/private-services.js';

export interface BenchApi {
  /** `http://127.0.0.1:<port>` */
  base: string;
  apiKey: string;
  /** The key and a JSON content type. */
  headers: Record<string, string>;
  /** The scratch database's name (to find its Postgres backends). */
  dbName: string;
  /** Its connection string and the queue prefix, for a worker on the same stack. */
  databaseUrl: string;
  queuePrefix: string;
  /** The API process now (a new one after `restart()`). */
  process: ChildProcess;
  /** Starts the API again on the same port, database and prefix (after it died or was killed). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Polls /readyz until it answers 200; throws when the process exited or 30 s passed. */
async function waitUntilReady(base: string, exited: () => boolean): Promise<void> {
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (i > 300 || exited()) throw new Error('the API did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `env` adds to or overrides the API's environment (DATA_ROOT, limits); its `EXTRA_API_KEYS`
 * (comma-separated, not an API setting) are keys the API accepts besides `apiKey`.
 */
export async function startBenchApi(
  label: string,
  env: Record<string, string> = {},
): Promise<BenchApi> {
  const config = loadConfig();
  const suffix = randomBytes(4).toString('hex');
  const dbName = `gq_bench_${label}_${suffix}`;
  const prefix = `gq-bench-${label}-${suffix}`;
  const databaseUrl = withDatabase(config.DATABASE_URL, dbName);
  const apiKey = `gq_bench_${randomBytes(24).toString('hex')}`;
  await createDatabase(config.DATABASE_URL, dbName);
  await migrateDatabase(databaseUrl);
  const port = await freePort();
  const spawnApi = () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/api/main.ts'], {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        QUEUE_PREFIX: prefix,
        PORT: String(port),
        RATE_LIMIT_MAX: '0',
        LOG_LEVEL: 'warn',
        ...env,
        API_KEYS: [apiKey, ...(env['EXTRA_API_KEYS'] ?? '').split(',')].filter(Boolean).join(','),
        EXTRA_API_KEYS: '',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    return { proc, exited: new Promise((resolve) => proc.once('exit', resolve)) };
  };
  let api = spawnApi();

  async function stop(): Promise<void> {
    const { proc, exited } = api;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
    await dropDatabase(config.DATABASE_URL, dbName);
    const redis = new Redis(config.REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }

  const base = `http://127.0.0.1:${port}`;
  const ready = () => waitUntilReady(base, () => api.proc.exitCode !== null);
  try {
    await ready();
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    base,
    apiKey,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    dbName,
    databaseUrl,
    queuePrefix: prefix,
    get process() {
      return api.proc;
    },
    async restart() {
      if (api.proc.exitCode === null && api.proc.signalCode === null) {
        api.proc.kill('SIGKILL');
        await api.exited;
      }
      api = spawnApi();
      await ready();
    },
    stop,
  };
}
