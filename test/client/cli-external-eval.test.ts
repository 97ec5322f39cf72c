/**
 * `gq external`, `log`, `finish`, `watch` over events and `eval`, run as a user would against a
 * real API (in this process) on a real database and queue. External runs need no worker; eval
 * submissions are only checked and enqueued here (no worker takes them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient, type ApiClient } from '../../src/client/api-client.js';
import { startApi, trainBody, type TestApi } from '../helpers/api.js';
import { runGq, startGq } from '../helpers/cli.js';
import { startTcpRelay } from '../helpers/tcp-relay.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let client: ApiClient;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase('cli_external');
  queue = await createTestQueue('cli-external');
  api = await startApi(db, queue.queue);
  client = createApiClient({ baseUrl: api.url, apiKey: api.key });
  dir = await mkdtemp(path.join(os.tmpdir(), 'gq-cli-external-'));
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const env = () => ({ GQ_API_URL: api.url, GQ_API_KEY: api.key });
const gq = (args: string[]) => runGq(args, env());

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

async function file(name: string, text: string): Promise<string> {
  const where = path.join(dir, name);
  await writeFile(where, text);
  return where;
}

const storedPoints = (runId: string) => db.prisma.metricPoint.count({ where: { runId } });

describe('gq external, log, finish', () => {
  let id: string;

  it('external opens a running run with the config file; --json prints the run', async () => {
    const config = await file('config.json', JSON.stringify({ lr: 0.1, commit: 'abc123' }));
    const res = await gq(['external', 'notebook', '--config', config]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^${UUID.source} running\\n$`));
    id = res.stdout.split(' ')[0]!;
    const row = await db.prisma.run.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ kind: 'external', status: 'running', name: 'notebook' });
    expect(row.config).toEqual({ lr: 0.1, commit: 'abc123' });

    const [json, notObject] = await Promise.all([
      gq(['external', 'plain', '--json']),
      gq(['external', 'bad', '--config', await file('list.json', '[1, 2]')]),
    ]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ kind: 'external', status: 'running' });
    expect(notObject.code).toBe(2);
    expect(notObject.stderr).toMatch(/list\.json must hold a JSON object/);
  });

  it('log --step stores one point per name=value; the same again inserts none', async () => {
    const first = await gq(['log', id, '--step', '5', 'train/loss=0.25', 'lr=1e-3']);
    expect(first.stderr).toBe('');
    expect(first.stdout).toBe('inserted 2 of 2\n');
    const again = await gq(['log', id, '--step', '5', 'train/loss=0.25', 'lr=1e-3']);
    expect(again.stdout).toBe('inserted 0 of 2\n');
    const rows = await db.prisma.metricPoint.findMany({
      where: { runId: id },
      orderBy: { name: 'asc' },
      select: { name: true, step: true, value: true },
    });
    expect(rows).toEqual([
      { name: 'lr', step: 5, value: 0.001 },
      { name: 'train/loss', step: 5, value: 0.25 },
    ]);
  });

  it('log refuses what is not name=value with a finite number, a bad step, or both forms at once (2)', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--step', '6', 'loss=abc'], /'loss=abc' is not name=value with a finite number/],
      [['--step', '6', 'loss='], /'loss=' is not name=value/],
      [['--step', '6', '=1'], /'=1' is not name=value/],
      [['--step', '6', 'loss=1e400'], /'loss=1e400' is not name=value/],
      [['--step', '6', 'loss'], /'loss' is not name=value/],
      [['--step', '1.5', 'loss=1'], /--step must be an integer of at least 0/],
      [['--step', '6'], /needs name=value arguments/],
      [['loss=1'], /needs either --step N name=value \.\.\. or --file/],
    ];
    const results = await Promise.all(cases.map(([args]) => gq(['log', id, ...args])));
    results.forEach((res, i) => {
      expect(res.code, cases[i]![0].join(' ')).toBe(2);
      expect(res.stderr).toMatch(cases[i]![1]);
    });
    expect(await storedPoints(id)).toBe(2);
  });

  it('log --file posts 25,000 lines in requests of 10,000; the same file again inserts none', async () => {
    const lines = [];
    for (let step = 0; step < 12_500; step++) {
      lines.push(JSON.stringify({ name: 'file/loss', step, value: 1 / (step + 1) }));
      lines.push(
        JSON.stringify({
          name: 'file/acc',
          step,
          value: step / 12_500,
          time: '2025-01-01T00:00:00Z',
        }),
      );
      if (step === 7000) lines.push(''); // blank lines are skipped
    }
    const points = await file('points.jsonl', `${lines.join('\n')}\n`);
    const first = await gq(['log', id, '--file', points]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('inserted 25000 of 25000\n');
    expect(await storedPoints(id)).toBe(2 + 25_000);
    const again = await gq(['log', id, '--file', points, '--json']);
    expect(JSON.parse(again.stdout)).toEqual({ received: 25_000, inserted: 0 });
  });

  it('log --file names the line of a bad point: its own checks (2), the server refusing it (1)', async () => {
    const [notPoint, refused, missing] = await Promise.all([
      gq([
        'log',
        id,
        '--file',
        await file('bad.jsonl', '{"name":"x","step":1,"value":1}\n\n{"name":"x","step":2}\n'),
      ]),
      gq([
        'log',
        id,
        '--file',
        await file(
          'refused.jsonl',
          '{"name":"ok","step":1,"value":1}\n{"name":"no spaces","step":1,"value":1}\n',
        ),
      ]),
      gq(['log', id, '--file', path.join(dir, 'absent.jsonl')]),
    ]);
    expect(notPoint.code).toBe(2);
    expect(notPoint.stderr).toMatch(/bad\.jsonl:3: not a point/);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/400 Invalid request/);
    expect(refused.stderr).toMatch(/refused\.jsonl:2\.name: letters, digits/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*absent\.jsonl/);
    expect(await storedPoints(id)).toBe(2 + 25_000);
  });

  it('finish ends the run with its status and error; a second finish is refused (1)', async () => {
    const bad = await gq(['finish', id, '--status', 'done']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--status must be one of succeeded, failed, cancelled/);
    const res = await gq(['finish', id, '--status', 'failed', '--error', 'diverged']);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe(`${id} failed\n`);
    const row = await db.prisma.run.findUniqueOrThrow({ where: { id } });
    expect(row.status).toBe('failed');
    expect(row.error).toMatchObject({ message: 'diverged' });
    const again = await gq(['finish', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 Conflict: .* is failed, not running/);
  });
});

describe('gq watch of an external run', () => {
  it('redraws on its events and exits 0 when the run is finished succeeded meanwhile', async () => {
    const run = await client.createExternal({ kind: 'external', name: 'watched' });
    const watch = startGq(['watch', run.id], env());
    try {
      await watch.waitFor(/running/);
      await client.logMetrics(run.id, [{ name: 'train/loss', step: 4, value: 0.5 }]);
      await watch.waitFor(/train\/loss=0\.500/);
      await client.finish(run.id, { status: 'succeeded' });
      const res = await watch.exited;
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^\[\.{24}\]\s+0%\s+running\s*$/),
        expect.stringMatching(/^\[\.{24}\]\s+0%\s+running\s+train\/loss=0\.500$/),
        expect.stringMatching(/^\[#{24}\] 100%\s+succeeded\s+train\/loss=0\.500$/),
        `${run.id} succeeded`,
      ]);
    } finally {
      watch.kill();
    }
  });

  it('reconnects after the stream drops and reads the run again: a finish it missed exits 1', async () => {
    const relay = await startTcpRelay(api.url);
    const run = await client.createExternal({ kind: 'external', name: 'dropped' });
    const watch = startGq(['watch', run.id, '--json'], {
      GQ_API_URL: relay.url,
      GQ_API_KEY: api.key,
    });
    try {
      await watch.waitFor(/"status": ?"running"/);
      relay.state.paused = true;
      relay.drop();
      await watch.waitFor(/lost the event stream/, 'stderr');
      // Finished while gq cannot connect: it learns it from the status that opens its next stream.
      await client.finish(run.id, { status: 'failed', error: 'out of memory' });
      await new Promise((resolve) => setTimeout(resolve, 2500)); // two failed attempts at least
      relay.state.paused = false;
      const res = await watch.exited;
      expect(res.code, res.stderr).toBe(1);
      // The run as the API has it (read again), not only the status the event carried.
      const last = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
      expect(last).toMatchObject({
        id: run.id,
        status: 'failed',
        error: { message: 'out of memory' },
      });
      // Reported once for the outage, not once per failed attempt.
      expect(res.stderr.match(/lost the event stream/g)).toHaveLength(1);
    } finally {
      watch.kill();
      await relay.close();
    }
  });

  it('exits 1 with the problem for an unknown run', async () => {
    const res = await gq(['watch', '00000000-0000-4000-8000-000000000000']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/404 Not Found: run .* does not exist/);
  });
});

describe('gq eval', () => {
  let dataset: string;
  let trainedId: string;

  beforeAll(async () => {
    dataset = await file(
      'dataset.json',
      JSON.stringify({ format: 'synthetic', numClasses: 4, size: 64, seed: 3 }),
    );
    // A queued training run with one checkpoint row (eval submission reads only the row).
    const trained = await client.submit(trainBody() as Parameters<typeof client.submit>[0]);
    trainedId = trained.id;
    await db.prisma.checkpoint.create({
      data: {
        runId: trainedId,
        step: 5,
        epoch: 0,
        location: `runs/${trainedId}/step-5`,
        bytes: 1n,
        sha256: '0'.repeat(64),
      },
    });
  });

  it('submits an eval of a checkpoint and prints "<id> queued"', async () => {
    const res = await gq([
      'eval',
      trainedId,
      '--checkpoint',
      'step:5',
      '--dataset',
      dataset,
      '--batch-size',
      '16',
    ]);
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(new RegExp(`^${UUID.source} queued\\n$`));
    const row = await db.prisma.run.findUniqueOrThrow({ where: { id: res.stdout.split(' ')[0]! } });
    expect(row.kind).toBe('eval');
    expect(row.config).toMatchObject({
      checkpoint: { runId: trainedId, step: 5 },
      batchSize: 16,
      dataset: { format: 'synthetic', numClasses: 4, size: 64, seed: 3 },
    });
  });

  it('says what is missing or wrong (2), and passes on 404 for an unknown run and 422 for a missing checkpoint (1)', async () => {
    const usage: Array<[string[], RegExp]> = [
      [['--dataset', dataset], /needs --checkpoint best, latest or step:N/],
      [['--checkpoint', 'worst', '--dataset', dataset], /needs --checkpoint best, latest/],
      [['--checkpoint', 'best'], /needs --dataset FILE\.json/],
      [['--checkpoint', 'best', '--dataset', path.join(dir, 'nope.json')], /cannot read data set/],
      [['--checkpoint', 'best', '--dataset', dataset, '--batch-size', '0'], /--batch-size must be/],
    ];
    const [noRun, unknown, noCheckpoint, ...usageResults] = await Promise.all([
      gq(['eval', '--checkpoint', 'best', '--dataset', dataset]),
      gq([
        'eval',
        '00000000-0000-4000-8000-000000000000',
        '--checkpoint',
        'best',
        '--dataset',
        dataset,
      ]),
      gq(['eval', trainedId, '--checkpoint', 'best', '--dataset', dataset]),
      ...usage.map(([args]) => gq(['eval', trainedId, ...args])),
    ]);
    expect(noRun.code).toBe(2);
    expect(noRun.stderr).toMatch(/gq eval needs a run id/);
    usageResults.forEach((res, i) => {
      expect(res.code, usage[i]![0].join(' ')).toBe(2);
      expect(res.stderr).toMatch(usage[i]![1]);
    });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404 Not Found: run .* does not exist/);
    expect(noCheckpoint.code).toBe(1);
    expect(noCheckpoint.stderr).toMatch(/422 Unprocessable Content: .*has no checkpoint 'best'/);
    expect(await db.prisma.run.count({ where: { kind: 'eval' } })).toBe(1);
  });
});
