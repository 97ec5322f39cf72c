/**
 * External runs and metric series: ingest is idempotent, bucketed answers carry the true
 * extremes of every bucket, zoomed ranges answer the exact stored values, and the rollup levels
 * stay right when a resumed run deletes its points from the resume step on.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { workerWrites } from '../helpers/worker-writes.js';
import { getJson, postJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
/** Checkpoint bytes of the run store (none are written here). */
let artifacts: ReturnType<typeof createPostgresArtifactStore>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;

beforeAll(async () => {
  db = await createTestDatabase('api_metrics');
  artifacts = createPostgresArtifactStore(db.url);
  queue = await createTestQueue('api-metrics');
  api = await startApi(db, queue.queue);
});
afterAll(async () => {
  await artifacts?.close();
  await api?.close();
  await queue?.close();
  await db?.drop();
});
beforeEach(async () => {
  await db.prisma.run.deleteMany();
});

interface Point {
  name: string;
  step: number;
  value: number;
}
interface Bucket {
  step: number;
  value: number;
  min?: number;
  max?: number;
  count?: number;
}

/** A noisy falling curve with rare spikes both ways: what min/max buckets must not lose. */
function curve(name: string, from: number, to: number, seed = 1): Point[] {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: Point[] = [];
  for (let step = from; step <= to; step++) {
    const r = rand();
    const spike = r < 0.001 ? 50 : r > 0.999 ? -50 : 0;
    out.push({ name, step, value: 3 / (1 + step / 1000) + rand() * 0.1 + spike });
  }
  return out;
}

async function externalRun(name = 'notebook'): Promise<string> {
  const res = await postJson(`${api.url}/v1/runs`, { kind: 'external', name, config: { lr: 0.1 } });
  expect(res.status).toBe(201);
  return res.json.id;
}

async function ingest(runId: string, points: Point[]) {
  for (let i = 0; i < points.length; i += 10_000) {
    const res = await postJson(`${api.url}/v1/runs/${runId}/metrics`, {
      points: points.slice(i, i + 10_000),
    });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  }
}

async function series(runId: string, query: string): Promise<Bucket[]> {
  const res = await getJson(`${api.url}/v1/runs/${runId}/metrics?${query}`);
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return res.json.series[0]?.points ?? [];
}

/**
 * Each bucket holds the points after the previous bucket's last step up to its own: checks its
 * min, max, count and last value against those raw points, and that the buckets cover `raw`.
 */
function expectExactBuckets(buckets: Bucket[], raw: Point[]): void {
  let i = 0;
  for (const b of buckets) {
    const inside: Point[] = [];
    while (i < raw.length && raw[i]!.step <= b.step) inside.push(raw[i++]!);
    expect(inside.length, `bucket ending at ${b.step}`).toBeGreaterThan(0);
    expect(b.count).toBe(inside.length);
    expect(b.min).toBe(Math.min(...inside.map((p) => p.value)));
    expect(b.max).toBe(Math.max(...inside.map((p) => p.value)));
    expect(b.step).toBe(inside[inside.length - 1]!.step);
    expect(b.value).toBe(inside[inside.length - 1]!.value);
  }
  expect(i).toBe(raw.length);
}

describe('external runs', () => {
  it('are created running, never queued, and take points until finished', async () => {
    const id = await externalRun();
    const run = (await getJson(`${api.url}/v1/runs/${id}`)).json;
    expect(run).toMatchObject({ kind: 'external', status: 'running', config: { lr: 0.1 } });
    expect(await queue.queue.getJob(id)).toBeUndefined();

    await ingest(id, [{ name: 'loss', step: 1, value: 0.5 }]);
    const finished = await postJson(`${api.url}/v1/runs/${id}/finish`, { status: 'succeeded' });
    expect(finished.status).toBe(200);
    expect(finished.json).toMatchObject({ status: 'succeeded', finishedAt: expect.any(String) });

    const late = await postJson(`${api.url}/v1/runs/${id}/metrics`, {
      points: [{ name: 'loss', step: 2, value: 0.4 }],
    });
    expect(late.status).toBe(409);
    expect((await postJson(`${api.url}/v1/runs/${id}/finish`, { status: 'failed' })).status).toBe(
      409,
    );
  });

  it('refuses points for a training run (its worker writes them) and bad points by field', async () => {
    const train = await db.prisma.run.create({ data: { kind: 'train', config: {} } });
    const res = await postJson(`${api.url}/v1/runs/${train.id}/metrics`, {
      points: [{ name: 'loss', step: 1, value: 1 }],
    });
    expect(res.status).toBe(409);
    const id = await externalRun();
    const bad = await postJson(`${api.url}/v1/runs/${id}/metrics`, {
      points: [
        { name: 'loss', step: -1, value: 1 },
        { name: '../x', step: 1, value: 1 },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((e: { path: string }) => e.path)).toEqual(
      expect.arrayContaining(['body.points.0.step', 'body.points.1.name']),
    );
  });
});

describe('ingest', () => {
  it('takes 10,000 points in one request past the 1 MiB body limit of other routes', async () => {
    const id = await externalRun();
    const name = `train/${'a_rather_long_metric_name_'.repeat(3)}loss`;
    const points = curve(name, 0, 9_999);
    const body = JSON.stringify({ points });
    expect(body.length).toBeGreaterThan(1024 * 1024);
    const res = await postJson(`${api.url}/v1/runs/${id}/metrics`, { points });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ received: 10_000, inserted: 10_000 });
    // Other routes keep their limit.
    const big = await postJson(`${api.url}/v1/runs`, {
      kind: 'external',
      name: 'x',
      config: { points },
    });
    expect(big.status).toBe(413);
    const tooMany = await postJson(`${api.url}/v1/runs/${id}/metrics`, {
      points: curve('x', 0, 10_000),
    });
    expect(tooMany.status).toBe(400);
  });

  it('is idempotent: the same batch twice changes no point, no rollup and no answer', async () => {
    const id = await externalRun();
    const points = curve('loss', 0, 4_999);
    await ingest(id, points);
    const rollups = () =>
      db.prisma.metricRollup.findMany({ orderBy: [{ level: 'asc' }, { bucket: 'asc' }] });
    const before = { rollups: await rollups(), answer: await series(id, 'maxPoints=100') };

    const again = await postJson(`${api.url}/v1/runs/${id}/metrics`, { points });
    expect(again.json).toEqual({ received: 5_000, inserted: 0 });
    // A resent point with another value keeps the stored one.
    const changed = await postJson(`${api.url}/v1/runs/${id}/metrics`, {
      points: [{ name: 'loss', step: 10, value: 1e9 }],
    });
    expect(changed.json.inserted).toBe(0);

    expect(await db.prisma.metricPoint.count({ where: { runId: id } })).toBe(5_000);
    expect(await rollups()).toEqual(before.rollups);
    expect(await series(id, 'maxPoints=100')).toEqual(before.answer);
  });
});

describe('GET /v1/runs/:id/metrics', () => {
  let id: string;
  const raw = curve('loss', 0, 39_999, 7);
  beforeEach(async () => {
    id = await externalRun();
    await ingest(id, raw);
  });

  it('answers at most maxPoints buckets whose min, max, count and last are exact', async () => {
    const buckets = await series(id, 'names=loss&maxPoints=100');
    expect(buckets.length).toBeLessThanOrEqual(100);
    expect(buckets.length).toBeGreaterThan(50);
    expectExactBuckets(buckets, raw);
    // The envelope holds the spikes.
    expect(Math.max(...buckets.map((b) => b.max!))).toBe(Math.max(...raw.map((p) => p.value)));
    expect(Math.min(...buckets.map((b) => b.min!))).toBe(Math.min(...raw.map((p) => p.value)));
  });

  it('buckets an unaligned range exactly, edges included', async () => {
    for (const [from, to, max] of [
      [1_234, 37_777, 200],
      [5, 900, 30],
      [17, 33_000, 7],
    ] as const) {
      const buckets = await series(id, `fromStep=${from}&toStep=${to}&maxPoints=${max}`);
      expect(buckets.length).toBeLessThanOrEqual(max);
      expectExactBuckets(
        buckets,
        raw.filter((p) => p.step >= from && p.step <= to),
      );
    }
  });

  it('buckets a whole series that starts and ends mid-bucket exactly, however few buckets are asked', async () => {
    // Steps 777..39,999 of another series: the first and last buckets of every level are cut by
    // the series itself, and are read from the levels, not from the raw points.
    const offset = curve('offset', 777, 39_999, 5);
    await ingest(id, offset);
    for (const query of [
      'maxPoints=1',
      'maxPoints=3',
      'maxPoints=37',
      'fromStep=0&toStep=2000000&maxPoints=5',
    ]) {
      const buckets = await series(id, `names=offset&${query}`);
      expectExactBuckets(buckets, offset);
    }
    // One end cut by the range, the other by the series.
    for (const [from, to, max] of [
      [1_000, 2_000_000, 7],
      [0, 20_001, 9],
      [5_555, 39_999, 3],
    ] as const) {
      const buckets = await series(
        id,
        `names=offset&fromStep=${from}&toStep=${to}&maxPoints=${max}`,
      );
      expect(buckets.length).toBeLessThanOrEqual(max);
      expectExactBuckets(
        buckets,
        offset.filter((p) => p.step >= from && p.step <= to),
      );
    }
    const one = await series(id, 'names=loss&maxPoints=1');
    expect(one).toHaveLength(1);
    expectExactBuckets(one, raw);
  });

  it('answers a zoomed range that fits with the exact stored values', async () => {
    const points = await series(id, 'fromStep=20000&toStep=20999&maxPoints=1000');
    expect(points).toEqual(
      raw
        .filter((p) => p.step >= 20_000 && p.step <= 20_999)
        .map((p) => ({ step: p.step, value: p.value })),
    );
  });

  it('answers a sparse series (few points over many steps) exactly', async () => {
    const sparse = Array.from({ length: 40 }, (_, i) => ({
      name: 'val/acc',
      step: i * 1000,
      value: i / 40,
    }));
    await ingest(id, sparse);
    const res = await getJson(`${api.url}/v1/runs/${id}/metrics?maxPoints=100`);
    const byName = Object.fromEntries(res.json.series.map((s: any) => [s.name, s.points]));
    expect(Object.keys(byName).sort()).toEqual(['loss', 'val/acc']);
    expect(byName['val/acc']).toEqual(sparse.map((p) => ({ step: p.step, value: p.value })));
  });

  it('compares runs: GET /v1/metrics answers each run in the order asked', async () => {
    const other = await externalRun('other');
    await ingest(other, curve('loss', 0, 99, 3));
    const res = await getJson(
      `${api.url}/v1/metrics?runIds=${other},${id}&names=loss&maxPoints=50`,
    );
    expect(res.status).toBe(200);
    expect(res.json.runs.map((r: any) => r.runId)).toEqual([other, id]);
    expect(res.json.runs[1].series[0].points.length).toBeLessThanOrEqual(50);
    const missing = await getJson(
      `${api.url}/v1/metrics?runIds=00000000-0000-4000-8000-000000000000&names=loss`,
    );
    expect(missing.status).toBe(404);
  });
});

describe('rollups after a resume', () => {
  it('drop the deleted points and take the rewritten ones (worker writes through the run store)', async () => {
    const run = await db.prisma.run.create({ data: { kind: 'train', config: {} } });
    const { store, lifecycle } = workerWrites(db.prisma, artifacts, queue.queue);
    const lease = (await lifecycle.claim(run.id, { workerId: 'w', attempt: 1 }))!;
    const first = curve('train/loss', 0, 69_999, 11);
    for (let i = 0; i < first.length; i += 5000)
      await store.writeMetrics(
        lease,
        first.slice(i, i + 5000).map((p) => ({ ...p, time: Date.now() })),
      );
    // The attempt died; the next resumes from step 30,000 and writes other values from there.
    await store.markResumed(lease, 30_000);
    const second = curve('train/loss', 30_000, 49_999, 99).map((p) => ({
      ...p,
      value: p.value + 7,
    }));
    for (let i = 0; i < second.length; i += 5000)
      await store.writeMetrics(
        lease,
        second.slice(i, i + 5000).map((p) => ({ ...p, time: Date.now() })),
      );
    const now = [...first.filter((p) => p.step < 30_000), ...second];

    const buckets = await series(run.id, 'maxPoints=64');
    expectExactBuckets(buckets, now);
    expect(buckets[buckets.length - 1]!.step).toBe(49_999);
    // Every level agrees with the raw points.
    const levels = await db.prisma.$queryRaw<Array<{ level: number; n: number; hi: number }>>`
      SELECT level, sum(count)::int AS n, max("lastStep") AS hi FROM "MetricRollup"
      WHERE "runId" = ${run.id}::uuid GROUP BY level`;
    expect(levels).toHaveLength(9);
    for (const l of levels) expect(l).toMatchObject({ n: 50_000, hi: 49_999 });
    // The run's newest point (read from the top level) is the rewritten one.
    const shown = await getJson(`${api.url}/v1/runs/${run.id}`);
    expect(shown.json.latestMetrics).toEqual({
      'train/loss': { step: 49_999, value: second[second.length - 1]!.value },
    });
  });
});

describe('many series', () => {
  /** `n` series of 3 points each (steps 0, 10, 20), named `s/00000`… */
  function manySeries(n: number, offset = 0): Point[] {
    return Array.from({ length: n }, (_, i) => `s/${String(i + offset).padStart(5, '0')}`).flatMap(
      (name) => [0, 10, 20].map((step) => ({ name, step, value: step })),
    );
  }

  it('refuses points that would give a run more than METRICS_MAX_SERIES_PER_RUN series, and stores none of them', async () => {
    const id = await externalRun();
    // 10,000 names in one request: before the cap, the run's reads then failed for ever.
    const res = await postJson(`${api.url}/v1/runs/${id}/metrics`, {
      points: Array.from({ length: 10_000 }, (_, i) => ({ name: `n/${i}`, step: 0, value: i })),
    });
    expect(res.status, JSON.stringify(res.json)).toBe(422);
    expect(res.json.type).toBe('urn:googlenet-queue:problem:unprocessable');
    expect(res.json.detail).toMatch(/METRICS_MAX_SERIES_PER_RUN.*1000/);
    expect(await db.prisma.metricPoint.count({ where: { runId: id } })).toBe(0);

    // Up to the cap is fine, in any number of requests; one more series is not; more points
    // of the series it has still are.
    await ingest(id, manySeries(600));
    await ingest(id, manySeries(400, 600));
    const over = await postJson(`${api.url}/v1/runs/${id}/metrics`, {
      points: [{ name: 'one/more', step: 0, value: 1 }],
    });
    expect(over.status).toBe(422);
    expect(over.json.detail).toMatch(/1000/);
    await ingest(id, [{ name: 's/00000', step: 30, value: 1 }]);
  });

  it('answers every series of a run at the cap in one bounded read, and compares such runs', async () => {
    const id = await externalRun();
    await ingest(id, manySeries(1000));
    const started = Date.now();
    const res = await getJson(`${api.url}/v1/runs/${id}/metrics?maxPoints=1`);
    expect(res.status, JSON.stringify(res.json).slice(0, 500)).toBe(200);
    console.log(`[many series] 1000 series, maxPoints=1: ${Date.now() - started} ms`);
    expect(res.json.series).toHaveLength(1000);
    expect(res.json.series[0]).toEqual({
      name: 's/00000',
      points: [{ step: 20, value: 20, min: 0, max: 20, count: 3 }],
    });
    const exact = await getJson(`${api.url}/v1/runs/${id}/metrics?maxPoints=3`);
    expect(exact.status).toBe(200);
    expect(exact.json.series[999].points).toEqual([
      { step: 0, value: 0 },
      { step: 10, value: 10 },
      { step: 20, value: 20 },
    ]);
    const other = await externalRun('other');
    await ingest(other, manySeries(1000));
    const compared = await getJson(`${api.url}/v1/metrics?runIds=${id},${other}&maxPoints=2`);
    expect(compared.status).toBe(200);
    expect(compared.json.runs.map((r: any) => r.series.length)).toEqual([1000, 1000]);
  });

  it('still answers a run that has more series than the cap (written before it), with the first ones up to the cap', async () => {
    const id = await externalRun();
    // 10,000 series of 2 points, written as psql or an ingest could before the cap existed.
    await db.prisma.$executeRaw`
      INSERT INTO "MetricPoint" ("runId", name, step, value, "wallTime")
      SELECT ${id}::uuid, 'legacy/' || lpad(i::text, 5, '0'), s, s, now()
      FROM generate_series(1, 10000) AS i, generate_series(0, 1) AS s`;
    // Before: a few statements per series in one transaction, past Prisma's timeout: a 500.
    const res = await getJson(`${api.url}/v1/runs/${id}/metrics?maxPoints=1`);
    expect(res.status, JSON.stringify(res.json).slice(0, 300)).toBe(200);
    expect(res.json.series).toHaveLength(1000);
    expect(res.json.series[999].name).toBe('legacy/01000');
  });

  it('refuses a read that asks for more than METRICS_MAX_POINTS_PER_READ points, naming it', async () => {
    const id = await externalRun();
    await ingest(id, manySeries(30));
    // 30 series × 10,000 points = 300,000 > 200,000
    const all = await getJson(`${api.url}/v1/runs/${id}/metrics?maxPoints=10000`);
    expect(all.status, JSON.stringify(all.json)).toBe(422);
    expect(all.json.detail).toMatch(/200000 points.*METRICS_MAX_POINTS_PER_READ/);
    const names = Array.from({ length: 30 }, (_, i) => `s/${String(i).padStart(5, '0')}`);
    const ids = Array.from({ length: 20 }, () => id).join(',');
    const compared = await getJson(
      `${api.url}/v1/metrics?runIds=${ids}&names=${names.slice(0, 2).join(',')}&maxPoints=10000`,
    );
    expect(compared.status).toBe(200); // the same run twenty times is one run
    expect((await getJson(`${api.url}/v1/runs/${id}/metrics?maxPoints=6000`)).status).toBe(200);
  });
});
