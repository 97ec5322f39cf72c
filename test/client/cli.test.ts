/**
 * The `gq` CLI and the typed client against a real API (in this process) on a real database and
 * queue; `watch` follows a tiny run that a real worker process trains to the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, createApiClient } from '../../src/client/api-client.js';
import { startApi, trainBody, type TestApi } from '../helpers/api.js';
import { runGq } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let dir: string;
let configFile: string;
let worker: ChildProcess | undefined;
let workerLog = '';

beforeAll(async () => {
  db = await createTestDatabase('cli');
  queue = await createTestQueue('cli');
  api = await startApi(db, queue.queue);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gq-cli-'));
  configFile = path.join(dir, 'run.json');
  await writeFile(
    configFile,
    JSON.stringify(
      trainBody({
        name: 'from-cli',
        train: { epochs: 2, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
      }),
    ),
  );
});
afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker!.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
  }
  await api?.close();
  await queue?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI against this file's API. */
const gq = (
  args: string[],
  env: Record<string, string | undefined> = { GQ_API_URL: api.url, GQ_API_KEY: api.key },
) => runGq(args, env);

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

describe('gq without a worker', () => {
  let id: string;

  it('submit prints the new run id and status; the run is written and enqueued', async () => {
    const res = await gq(['submit', configFile]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^${UUID.source} queued\\n$`));
    id = res.stdout.split(' ')[0]!;
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id } })).name).toBe('from-cli');
    expect(await queue.queue.getJob(id)).toBeDefined();
  });

  it('list shows it; show describes it; --json prints the API answer', async () => {
    const list = await gq(['list', '--limit', '5']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+queued\\s+from-cli`));
    await db.prisma.metricPoint.createMany({
      data: [0.75, 0.5].map((value, i) => ({
        runId: id,
        name: 'val/accuracy',
        step: i,
        value,
        wallTime: new Date(),
      })),
    });
    const show = await gq(['show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`id\\s+${id}`));
    expect(show.stdout).toMatch(/status\s+queued/);
    expect(show.stdout).toMatch(/best\s+val\/accuracy 0\.7500/);
    const json = await gq(['show', id, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ id, status: 'queued', name: 'from-cli' });
  });

  it('cancel cancels the queued run', async () => {
    const res = await gq(['cancel', id]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`${id} cancelled\n`);
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id } })).status).toBe('cancelled');
    const again = await gq(['cancel', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 Conflict: .*already been cancelled/);
  });

  it('takes the URL and key from flags as well as from the environment', async () => {
    const res = await gq(['list', '--url', api.url, '--key', api.key, '--json'], {});
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).items.map((r: { id: string }) => r.id)).toContain(id);
  });

  it('says what is wrong: no key (2), a wrong key (1), a bad config naming the field (1), a bad command (2)', async () => {
    const noKey = await gq(['list'], { GQ_API_URL: api.url });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/GQ_API_KEY/);
    const wrongKey = await gq(['list'], { GQ_API_URL: api.url, GQ_API_KEY: 'gq_wrong' });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/401 Unauthorized/);
    const bad = path.join(dir, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify(
        trainBody({
          train: { epochs: 0, batchSize: 8, optimizer: { type: 'adam', learningRate: 1 } },
        }),
      ),
    );
    const refused = await gq(['submit', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/400 Invalid request/);
    expect(refused.stderr).toMatch(/body\.train\.epochs/);
    const unknown = await gq(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    // watch follows events now: nothing polls, so there is no interval to set.
    const interval = await gq(['watch', id, '--interval', '200']);
    expect(interval.code).toBe(2);
    expect(interval.stderr).toMatch(/Unknown option '--interval'/);
  });
});

describe('gq and text other users wrote', () => {
  it('escapes control characters in names and errors instead of sending them to the terminal', async () => {
    // Written before the API refused such names (or by hand): what the CLI may still meet.
    const hostile = 'evil\u001b]0;pwned\u0007\r\u001b[2Kfine\u009b31m\u202egnp.exe';
    const run = await db.prisma.run.create({
      data: {
        kind: 'external',
        status: 'failed',
        name: hostile,
        config: {},
        error: {
          name: 'X',
          message: 'boom\u001b[1A\nforged line',
          attempt: 1,
          unrecoverable: true,
        },
      },
    });
    // eslint-disable-next-line no-control-regex -- raw control characters are what must not pass
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
    const list = await gq(['list', '--limit', '100']);
    expect(list.code).toBe(0);
    expect(list.stdout).not.toMatch(raw);
    expect(list.stdout).toContain('evil\\x1b]0;pwned\\x07\\x0d\\x1b[2Kfine\\x9b31m\\u202egnp.exe');
    const show = await gq(['show', run.id]);
    expect(show.stdout).not.toMatch(raw);
    expect(show.stdout).toContain('boom\\x1b[1A\\x0aforged line');
    expect(show.stdout).not.toMatch(/^forged line/m);
    const json = await gq(['show', run.id, '--json']);
    expect(json.stdout).not.toMatch(raw);
    expect(JSON.parse(json.stdout).name).toBe(hostile);
    await db.prisma.run.delete({ where: { id: run.id } });
  });
});

describe('the typed client', () => {
  it('answers with typed values and throws ApiError carrying the problem', async () => {
    const client = createApiClient({ baseUrl: api.url, apiKey: api.key });
    const run = await client.submit(
      trainBody({ name: 'typed' }) as Parameters<typeof client.submit>[0],
      { idempotencyKey: 'typed-1' },
    );
    expect(run.status).toBe('queued');
    // The same request again (an Idempotency-Key with another body would be refused, 422).
    const again = trainBody({ name: 'typed' }) as never;
    expect((await client.submit(again, { idempotencyKey: 'typed-1' })).id).toBe(run.id);
    expect((await client.list({ limit: 1 })).items[0]?.id).toBe(run.id);
    expect((await client.metrics(run.id, { names: ['train/loss'] })).series).toEqual([
      { name: 'train/loss', points: [] },
    ]);
    expect((await client.checkpoints(run.id)).items).toEqual([]);
    expect((await client.queues()).queues[0]?.name).toBe('training');
    expect((await client.cancel(run.id)).status).toBe('cancelled');
    const missing = await client
      .get('00000000-0000-4000-8000-000000000000')
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiError);
    expect((missing as ApiError).status).toBe(404);
    expect((missing as ApiError).problem.detail).toMatch(/does not exist/);
  });
});

describe('gq watch', () => {
  it('shows progress and metrics from the events of a run a real worker trains to the end, then exits 0', async () => {
    worker = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL,
        QUEUE_PREFIX: queue.prefix,
        ARTIFACT_ROOT: dir,
        TRAIN_BACKEND: 'wasm',
        TRAIN_THREADS: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout?.on('data', (d: Buffer) => (workerLog += d.toString()));
    worker.stderr?.on('data', (d: Buffer) => (workerLog += d.toString()));

    const submitted = await gq(['submit', configFile]);
    const id = submitted.stdout.split(' ')[0]!;
    expect(id).toMatch(UUID);
    const watched = await gq(['watch', id]);
    expect(watched.stderr, workerLog.slice(-2000)).toBe('');
    expect(watched.code, watched.stdout).toBe(0);
    const lines = watched.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe(`${id} succeeded`);
    expect(lines.at(-2)).toMatch(
      /^\[#{24}\] 100%\s+succeeded\s+step 14\/14 epoch 2\s+train\/loss=/,
    );
    expect(lines.at(-2)).toMatch(/val\/accuracy=/);
    expect(lines.some((l) => /^\[[#.]{24}\]\s+\d+%\s+(queued|running)/.test(l))).toBe(true);
  });
});
