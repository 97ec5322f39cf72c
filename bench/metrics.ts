/**
 * Metrics at scale, through the real API process:
 *
 *   npm run bench:metrics -- [--points 1000000] [--batch 10000] [--concurrency 2] [--queries 40] [--json]
 *
 * 1. Ingest: one external run, --points points of one series posted to
 *    `POST /v1/runs/:id/metrics` in batches of --batch, --concurrency requests in flight. The
 *    bodies are serialized before the clock starts (the trainer's cost, not the server's).
 * 2. Chart query: the full range with maxPoints=1000, --queries times: p50 and p95 latency.
 * 3. Zoom: --queries random 1,000-step ranges with maxPoints=1000, each checked against the
 *    values that were sent (exact equality), p50 latency.
 *
 * The machine is shared, so besides wall-clock throughput the ingest also reports the CPU time
 * it cost: the API process and its Postgres backends (Linux /proc), per point, and the
 * throughput that cost allows on 2 cores nobody else uses.
 *
 * Starts `src/api/main.ts` as a child process on a scratch database and queue prefix
 * (bench/api-process.ts) and removes both afterwards.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { startBenchApi } from './api-process.js';
import { median, percentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    points: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '2' },
    queries: { type: 'string', default: '40' },
    json: { type: 'boolean', default: false },
  },
});
const POINTS = Number(args.points);
const BATCH = Number(args.batch);
const CONCURRENCY = Number(args.concurrency);
const QUERIES = Number(args.queries);
const log = (line: string): void => {
  if (!args.json) process.stdout.write(`${line}\n`);
};

/** The value sent for a step: a noisy falling curve with a spike every 99,991 steps. */
function valueAt(step: number): number {
  const noise = Math.sin(step * 12.9898) * 43758.5453;
  return (
    3 / (1 + step / 10_000) + (noise - Math.floor(noise)) * 0.05 + (step % 99_991 === 0 ? 10 : 0)
  );
}

// Serialized before the API starts: an idle keep-alive connection would time out meanwhile.
log(`serializing ${POINTS.toLocaleString()} points in batches of ${BATCH.toLocaleString()}...`);
const bodies: string[] = [];
for (let start = 0; start < POINTS; start += BATCH) {
  const points = [];
  for (let step = start; step < Math.min(POINTS, start + BATCH); step++)
    points.push({ name: 'train/loss', step, value: valueAt(step) });
  bodies.push(JSON.stringify({ points }));
}

const config = loadConfig();
const api = await startBenchApi('metrics');
const { base, headers, dbName } = api;
const apiPid = api.process.pid!;

/** Postgres backends serving the scratch database (the API's pool). */
async function ourBackends(): Promise<number[]> {
  const client = new pg.Client({ connectionString: config.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = $1',
      [dbName],
    );
    return rows.map((r) => r.pid);
  } finally {
    await client.end();
  }
}

/** User + system CPU seconds of these processes so far (gone ones count 0). */
async function cpuSeconds(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / 100; // USER_HZ
}

try {
  const created = await fetch(`${base}/v1/runs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ kind: 'external', name: 'bench', config: {} }),
  });
  const { id: runId } = (await created.json()) as { id: string };

  // Warm-up: every pool connection (and so every backend) is open before the CPU is counted.
  await Promise.all(
    Array.from({ length: 4 }, () =>
      fetch(`${base}/v1/runs/${runId}/metrics?maxPoints=1`, { headers }),
    ),
  );
  const backends = await ourBackends();
  const apiCpuBefore = await cpuSeconds([apiPid]);
  const cpuBefore = await cpuSeconds([apiPid, ...backends]);
  const ingestStart = performance.now();
  let next = 0;
  let inserted = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const res = await fetch(`${base}/v1/runs/${runId}/metrics`, {
          method: 'POST',
          headers,
          body,
        });
        if (!res.ok) throw new Error(`ingest: ${res.status} ${await res.text()}`);
        inserted += ((await res.json()) as { inserted: number }).inserted;
      }
    }),
  );
  const ingestSeconds = (performance.now() - ingestStart) / 1000;
  const backendsAfter = await ourBackends();
  const cpu = (await cpuSeconds([apiPid, ...new Set([...backends, ...backendsAfter])])) - cpuBefore;
  const cpuMicrosPerPoint = (cpu / POINTS) * 1e6;
  const apiCpu = (await cpuSeconds([apiPid])) - apiCpuBefore;
  if (inserted !== POINTS) throw new Error(`inserted ${inserted} of ${POINTS}`);
  const pointsPerSecond = POINTS / ingestSeconds;
  log(
    `ingest: ${POINTS.toLocaleString()} points in ${ingestSeconds.toFixed(2)} s = ${Math.round(pointsPerSecond).toLocaleString()} points/s (${CONCURRENCY} requests in flight)`,
  );
  log(
    `ingest CPU: ${cpu.toFixed(1)} s (API process ${apiCpu.toFixed(1)} s + its Postgres backends ${(cpu - apiCpu).toFixed(1)} s) = ${cpuMicrosPerPoint.toFixed(1)} µs/point, i.e. ${Math.round(2 / (cpu / POINTS)).toLocaleString()} points/s on 2 free cores`,
  );

  const timed = async (url: string) => {
    const t = performance.now();
    const res = await fetch(url, { headers });
    const json = (await res.json()) as {
      series: Array<{ points: Array<{ step: number; value: number; min?: number; max?: number }> }>;
    };
    if (!res.ok) throw new Error(`query: ${res.status} ${JSON.stringify(json)}`);
    return { ms: performance.now() - t, points: json.series[0]!.points };
  };

  const full: number[] = [];
  let buckets = 0;
  let trueMax = -Infinity;
  let trueMin = Infinity;
  for (let step = 0; step < POINTS; step++) {
    trueMax = Math.max(trueMax, valueAt(step));
    trueMin = Math.min(trueMin, valueAt(step));
  }
  let envelopeOk = true;
  for (let i = 0; i < QUERIES; i++) {
    const { ms, points } = await timed(
      `${base}/v1/runs/${runId}/metrics?names=train/loss&maxPoints=1000`,
    );
    full.push(ms);
    buckets = points.length;
    envelopeOk &&=
      buckets <= 1000 &&
      Math.max(...points.map((p) => p.max!)) === trueMax &&
      Math.min(...points.map((p) => p.min!)) === trueMin;
  }
  log(
    `full range, maxPoints=1000: ${buckets} buckets, p50 ${median(full).toFixed(1)} ms, p95 ${percentile(full, 95).toFixed(1)} ms (client round trip), min/max envelope exact: ${envelopeOk ? 'yes' : 'NO'}`,
  );

  const zoom: number[] = [];
  let exact = true;
  for (let i = 0; i < QUERIES; i++) {
    const from = Math.floor(Math.random() * (POINTS - 1000));
    const { ms, points } = await timed(
      `${base}/v1/runs/${runId}/metrics?names=train/loss&fromStep=${from}&toStep=${from + 999}&maxPoints=1000`,
    );
    zoom.push(ms);
    exact &&=
      points.length === 1000 &&
      points.every(
        (p, j) => p.step === from + j && p.value === valueAt(from + j) && p.min === undefined,
      );
  }
  log(
    `zoom, 1,000 steps: p50 ${median(zoom).toFixed(1)} ms, exact stored values: ${exact ? 'yes' : 'NO'}`,
  );

  const result = {
    points: POINTS,
    batch: BATCH,
    concurrency: CONCURRENCY,
    ingestSeconds,
    pointsPerSecond,
    cpuSeconds: cpu,
    apiCpuSeconds: apiCpu,
    cpuMicrosPerPoint,
    pointsPerSecondOnTwoFreeCores: 2 / (cpu / POINTS),
    fullRange: {
      buckets,
      p50Ms: median(full),
      p95Ms: percentile(full, 95),
      envelopeExact: envelopeOk,
    },
    zoom: { p50Ms: median(zoom), exact },
  };
  if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await api.stop();
}
process.exit(0);
