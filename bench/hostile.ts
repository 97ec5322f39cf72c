/**
 * What hostile and heavy use costs the API: a catalogue of hostile requests (bench/hostile-cases.ts)
 * sent one by one, each classified, and then a load phase of the heavy requests all at once,
 * while a probe asks `/healthz` every 25 ms.
 *
 *   npm run bench:hostile -- [--json] [--bomb-mb 512] [--streams 100] [--predict-calls 10]
 *                            [--predict-input 96] [--metric-batches 200]
 *
 * Starts the real API as a process on a scratch database and queue prefix, with a DATA_ROOT of
 * hostile data sets (bench/hostile-data-root.ts), and a worker just long enough to train the
 * run that predict and eval use. Every case is classified as
 *   clean     refused with a 4xx problem+json (or 503 with Retry-After), no stack trace, no name
 *             from outside DATA_ROOT; or, for a case that must pass, a 2xx
 *   accepted  a 2xx where a refusal was due (or a refusal where a 2xx was due)
 *   unclean   a 4xx without problem+json, or leaking a stack or an outside name
 *   5xx       a 5xx (other than a 503 with Retry-After)
 *   stall     no answer within its time, or a /healthz probe meanwhile waited more than 1 s
 *   crash     the API process died (it is restarted for the next case)
 * The load phase reports /healthz latency percentiles idle and under load, the API's peak RSS,
 * and what each kind of heavy request got.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { startWorkerProcess, waitFor } from '../test/helpers/worker-process.js';
import { startBenchApi, type BenchApi } from './api-process.js';
import { startHealthzProbe, type HealthzProbe } from './healthz-probe.js';
import { hostileCases, type Answer, type CaseContext, type HostileCase } from './hostile-cases.js';
import { createHostileDataRoot } from './hostile-data-root.js';
import { stalledStream } from './raw-http.js';
import { percentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    'bomb-mb': { type: 'string', default: '512' },
    streams: { type: 'string', default: '100' },
    'predict-calls': { type: 'string', default: '10' },
    'predict-input': { type: 'string', default: '96' },
    'metric-batches': { type: 'string', default: '200' },
  },
});
const log = (line: string) => {
  if (!args.json) process.stdout.write(`${line}\n`);
};

type Verdict = 'clean' | 'accepted' | 'unclean' | '5xx' | 'stall' | 'crash';
interface CaseResult {
  group: string;
  name: string;
  verdict: Verdict;
  status: number;
  ms: number;
  healthzMaxMs: number;
}

const CASE_SECONDS = 2;
const STALL_HEALTHZ_MS = 1000;

function isAlive(api: BenchApi): boolean {
  return api.process.exitCode === null && api.process.signalCode === null;
}

function classify(
  c: HostileCase,
  answer: Answer,
  ms: number,
  healthzMaxMs: number,
  outside: string,
): Verdict {
  if (answer.status === 0) return 'stall';
  if ((ms > CASE_SECONDS * 1000 && c.group !== 'auth') || healthzMaxMs > STALL_HEALTHZ_MS)
    return 'stall';
  const refusedWell =
    (answer.status >= 400 && answer.status < 500) ||
    (answer.status === 503 && answer.retryAfter !== null);
  if (answer.status >= 500 && !refusedWell) return '5xx';
  if (c.expect === 'accept') return answer.status < 300 ? 'clean' : 'accepted';
  if (!refusedWell) return 'accepted';
  const leaks =
    /\n\s+at .+:\d+/.test(answer.body) ||
    answer.body.includes(outside) ||
    answer.body.includes('secret-');
  return answer.contentType.startsWith('application/problem+json') && !leaks ? 'clean' : 'unclean';
}

async function json(api: BenchApi, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${api.base}${route}`, {
    method,
    headers: api.headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** A run trained by a real worker, so predict and eval have a checkpoint. */
async function trainedRun(api: BenchApi, dataRoot: string, inputSize: number): Promise<string> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'gq-hostile-worker-'));
  const worker = startWorkerProcess({
    DATABASE_URL: api.databaseUrl,
    QUEUE_PREFIX: api.queuePrefix,
    SCRATCH_ROOT: scratch,
    DATA_ROOT: dataRoot,
    TRAIN_BACKEND: 'wasm',
    TRAIN_THREADS: '1',
  });
  try {
    const run = await json(api, 'POST', '/v1/runs', {
      kind: 'train',
      name: 'predict-target',
      model: { arch: 'googlenet', numClasses: 4, inputSize, width: 0.25 },
      dataset: { format: 'synthetic', numClasses: 4, size: 18, seed: 1 },
      train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
      checkpoint: { everySteps: 1 },
    });
    await waitFor(
      'the predict run to finish',
      async () => {
        const now = await json(api, 'GET', `/v1/runs/${run.id}`);
        if (now.status === 'failed')
          throw new Error(`training failed: ${JSON.stringify(now.error)}`);
        return now.status === 'succeeded' ? now : undefined;
      },
      600_000,
      () => worker.log().slice(-2000),
    );
    return run.id as string;
  } finally {
    await worker.terminate();
    await rm(scratch, { recursive: true, force: true });
  }
}

async function runCases(
  api: BenchApi,
  probe: HealthzProbe,
  ctx: CaseContext,
  outside: string,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of hostileCases()) {
    probe.reset();
    const started = performance.now();
    let answer: Answer;
    try {
      answer = await c.send(ctx);
    } catch {
      answer = { status: 0, contentType: '', retryAfter: null, body: '' };
    }
    const ms = performance.now() - started;
    await new Promise((r) => setTimeout(r, 50));
    const { latencies } = probe.reset();
    const healthzMaxMs = latencies.length ? Math.max(...latencies) : 0;
    let verdict = classify(c, answer, ms, healthzMaxMs, outside);
    if (!isAlive(api)) {
      verdict = 'crash';
      await api.restart();
    }
    results.push({
      group: c.group,
      name: c.name,
      verdict,
      status: answer.status,
      ms,
      healthzMaxMs,
    });
    log(
      `  ${verdict.padEnd(8)} ${String(answer.status).padStart(3)} ${ms.toFixed(0).padStart(6)} ms` +
        `  healthz max ${healthzMaxMs.toFixed(0).padStart(5)} ms  [${c.group}] ${c.name}`,
    );
  }
  return results;
}

async function rssMb(pid: number | undefined): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** Calls `fn` `n` times at once; returns how many answers got each status (0: no answer). */
async function statuses(
  n: number,
  fn: (i: number) => Promise<Response>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      let status: number;
      try {
        const res = await fn(i);
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 0;
      }
      counts[status] = (counts[status] ?? 0) + 1;
    }),
  );
  return counts;
}

interface HeavyOutcome {
  kind: string;
  statuses: Record<string, number>;
}

/** fetch on the bench API with its key, and a timeout no heavy request should reach. */
function requester(api: BenchApi) {
  return {
    post: (route: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      fetch(`${api.base}${route}`, {
        method: 'POST',
        headers: { ...api.headers, ...headers },
        body,
        signal: AbortSignal.timeout(180_000),
      }),
    get: (route: string) =>
      fetch(`${api.base}${route}`, { headers: api.headers, signal: AbortSignal.timeout(180_000) }),
  };
}

/**
 * Event streams that are opened and never read, half on the busy run, half on /v1/events,
 * spread over the keys so that EVENT_STREAMS_PER_KEY admits them all: the load is their
 * buffers, not the per-key cap (a case above checks that).
 */
function openStalledStreams(api: BenchApi, ctx: CaseContext, keys: string[]) {
  return Promise.all(
    Array.from({ length: Number(args.streams) }, (_, i) =>
      stalledStream(
        api.base,
        i % 2 ? '/v1/events' : `/v1/runs/${ctx.externalRunId}/events`,
        keys[i % keys.length] as string,
      ),
    ),
  );
}

/** Batches of 500 points on 10 series of the external run, one after another. */
async function metricBatches(api: BenchApi, ctx: CaseContext): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let b = 0; b < Number(args['metric-batches']); b++) {
    const points = Array.from({ length: 500 }, (_, i) => ({
      name: `load/series-${i % 10}-${'x'.repeat(40)}`,
      step: 1000 + 50 * b + Math.floor(i / 10),
      value: Math.random(),
    }));
    const res = await requester(api).post(
      `/v1/runs/${ctx.externalRunId}/metrics`,
      JSON.stringify({ points }),
    );
    await res.arrayBuffer();
    counts[res.status] = (counts[res.status] ?? 0) + 1;
  }
  return counts;
}

/** Every heavy request at once, next to the streams and the batches that feed them. */
async function heavyRequests(
  api: BenchApi,
  ctx: CaseContext,
  listRuns: number,
): Promise<HeavyOutcome[]> {
  const { post, get } = requester(api);
  const png = await sharp({
    create: { width: 512, height: 512, channels: 3, background: { r: 120, g: 30, b: 200 } },
  })
    .png()
    .toBuffer();
  const bomb = JSON.stringify({
    kind: 'train',
    model: { arch: 'googlenet', numClasses: 10, inputSize: 32, width: 0.125 },
    dataset: { format: 'idx', path: 'bomb', numClasses: 10 },
    train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
  });
  const bigArray = JSON.stringify({
    kind: 'external',
    name: 'big-array',
    config: Array(450_000).fill(0),
  });
  const reads = (i: number) =>
    i % 2
      ? `/v1/metrics?runIds=${ctx.externalRunId}&maxPoints=1000`
      : `/v1/runs/${ctx.externalRunId}/metrics?maxPoints=1000`;
  const kinds: Array<[string, Promise<Record<string, number>>]> = [
    ['metric batches of 500 points', metricBatches(api, ctx)],
    ['submissions of the .gz bomb', statuses(3, () => post('/v1/runs', bomb))],
    [
      'predict calls (512x512 PNG)',
      statuses(Number(args['predict-calls']), () =>
        post(`/v1/runs/${ctx.trainedRunId}/predict`, png, { 'content-type': 'image/png' }),
      ),
    ],
    [
      `GET /v1/runs?limit=100 (${listRuns} runs with big configs)`,
      statuses(5, () => get('/v1/runs?limit=100')),
    ],
    ['bodies with a 450,000-element array', statuses(3, () => post('/v1/runs', bigArray))],
    ['metric reads of the run with the most series', statuses(5, (i) => get(reads(i)))],
  ];
  return Promise.all(kinds.map(async ([kind, counts]) => ({ kind, statuses: await counts })));
}

async function heavyPhase(api: BenchApi, ctx: CaseContext, listRuns: number, keys: string[]) {
  const streams = await openStalledStreams(api, ctx, keys);
  const streamStatuses: Record<string, number> = {};
  for (const s of streams) streamStatuses[s.status] = (streamStatuses[s.status] ?? 0) + 1;
  const outcomes = await heavyRequests(api, ctx, listRuns);
  const ended = await Promise.all(streams.map((s) => s.endedByServer()));
  for (const s of streams) s.close();
  return {
    outcomes: [
      { kind: `event streams never read (${streams.length})`, statuses: streamStatuses },
      ...outcomes,
    ],
    streamsClosedByServer: ended.filter(Boolean).length,
  };
}

/** Runs with configs as big as the API takes (up to 900 KB), for the list's heavy reads. */
async function bigConfigRuns(api: BenchApi): Promise<{ count: number; configBytes: number }> {
  for (const bytes of [900_000, 60_000, 8_000]) {
    const body = { kind: 'external', name: 'big-config', config: { blob: 'x'.repeat(bytes) } };
    const res = await fetch(`${api.base}/v1/runs`, {
      method: 'POST',
      headers: api.headers,
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    if (res.status !== 201) continue;
    await Promise.all(Array.from({ length: 99 }, () => json(api, 'POST', '/v1/runs', body)));
    return { count: 100, configBytes: bytes };
  }
  return { count: 0, configBytes: 0 };
}

function latencySummary(sample: { latencies: number[]; failures: number }) {
  const xs = sample.latencies.length ? sample.latencies : [0];
  return {
    requests: sample.latencies.length,
    failures: sample.failures,
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    max: Math.max(...xs),
  };
}

const bombBytes = Number(args['bomb-mb']) * 1024 * 1024;
log(`making the hostile data root (a ${args['bomb-mb']} MB gzip bomb)...`);
const dataRoot = await createHostileDataRoot(bombBytes);
/** Keys for the event streams of the load phase, ten streams each. */
const streamKeys = Array.from(
  { length: Math.ceil(Number(args.streams) / 10) },
  () => `gq_bench_streams_${randomBytes(24).toString('hex')}`,
);
const api = await startBenchApi('hostile', {
  DATA_ROOT: dataRoot.root,
  LOG_LEVEL: 'error',
  EXTRA_API_KEYS: streamKeys.join(','),
});
try {
  log('training the run predict and eval use...');
  const trainedRunId = await trainedRun(api, dataRoot.root, Number(args['predict-input']));
  const externals = await Promise.all(
    Array.from({ length: 4 }, () =>
      json(api, 'POST', '/v1/runs', { kind: 'external', name: 'ext' }),
    ),
  );
  const ctx: CaseContext = {
    base: api.base,
    apiKey: api.apiKey,
    externalRunId: externals[0].id,
    spareExternalRunIds: externals.slice(1).map((r) => r.id as string),
    trainedRunId,
  };
  const big = await bigConfigRuns(api);
  log(`made ${big.count} runs with ${big.configBytes}-byte configs`);

  const probe = startHealthzProbe(api.base);
  await new Promise((r) => setTimeout(r, 5000));
  const idle = latencySummary(probe.reset());

  log('hostile cases:');
  const cases = await runCases(api, probe, ctx, dataRoot.outside);

  log('load phase...');
  probe.reset();
  let peakRss = await rssMb(api.process.pid);
  const rssTimer = setInterval(() => {
    void rssMb(api.process.pid).then((mb) => (peakRss = Math.max(peakRss, mb)));
  }, 250);
  const startRss = peakRss;
  const heavy = await heavyPhase(api, ctx, big.count, streamKeys);
  clearInterval(rssTimer);
  const load = latencySummary(probe.reset());
  const apiAliveAfterLoad = isAlive(api);
  await probe.stop();

  const tally: Record<Verdict, number> = {
    clean: 0,
    accepted: 0,
    unclean: 0,
    '5xx': 0,
    stall: 0,
    crash: 0,
  };
  for (const r of cases) tally[r.verdict]++;
  const report = {
    cases: { tried: cases.length, ...tally },
    notClean: cases.filter((r) => r.verdict !== 'clean'),
    healthz: { idle, load },
    apiRssMb: { beforeLoad: startRss, peak: peakRss },
    apiAliveAfterLoad,
    streamsClosedByServer: heavy.streamsClosedByServer,
    heavy: heavy.outcomes,
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ ...report, all: cases }, null, 2)}\n`);
  } else {
    log('');
    log(`hostile cases: ${cases.length} tried`);
    for (const [verdict, n] of Object.entries(tally)) log(`  ${verdict.padEnd(9)} ${n}`);
    for (const r of report.notClean) log(`  not clean: ${r.verdict} ${r.status} ${r.name}`);
    log('');
    log('/healthz every 25 ms      requests  failed    p50     p99     max (ms)');
    for (const [phase, s] of Object.entries(report.healthz))
      log(
        `  ${phase.padEnd(23)} ${String(s.requests).padStart(8)} ${String(s.failures).padStart(7)}` +
          ` ${s.p50.toFixed(1).padStart(6)} ${s.p99.toFixed(1).padStart(7)} ${s.max.toFixed(0).padStart(7)}`,
      );
    log(`API RSS: ${startRss.toFixed(0)} MB before the load phase, peak ${peakRss.toFixed(0)} MB`);
    log(`API alive after the load phase: ${apiAliveAfterLoad ? 'yes' : 'NO'}`);
    log(`event streams closed by the server for not reading: ${heavy.streamsClosedByServer}`);
    for (const o of heavy.outcomes) log(`  ${o.kind}: ${JSON.stringify(o.statuses)}`);
  }
} finally {
  await api.stop();
  await dataRoot.remove();
}
