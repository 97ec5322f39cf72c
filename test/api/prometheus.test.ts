/**
 * GET /metrics in Prometheus' text format: job states, job counters and durations from BullMQ's
 * events, live workers, API latency by route, ingested points; a key unless PROMETHEUS_AUTH=none.
 */
import { QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAINING_QUEUE } from '../../src/queue/training-queue.js';
import { postJson, startApi, trainBody, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let jobEvents: QueueEvents;

beforeAll(async () => {
  db = await createTestDatabase('api_prometheus');
  queue = await createTestQueue('api-prometheus');
  jobEvents = new QueueEvents(TRAINING_QUEUE, {
    connection: { url: REDIS_URL },
    prefix: queue.prefix,
  });
  await jobEvents.waitUntilReady();
  api = await startApi(db, queue.queue, {}, { jobEvents });
});
afterAll(async () => {
  await api?.close();
  await jobEvents?.close();
  await queue?.close();
  await db?.drop();
});

async function scrape(
  key: string | null = api.key,
): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(`${api.url}/metrics`, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  return {
    status: res.status,
    text: await res.text(),
    type: res.headers.get('content-type') ?? '',
  };
}

/** The value of one sample (`name{labels} value`), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  it('needs a key by default (read scope is enough)', async () => {
    expect((await scrape(null)).status).toBe(401);
    const reader = (await api.apiKeys.create({ name: 'scraper', scopes: ['read'] })).key;
    const res = await scrape(reader);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('counts jobs per state, workers, ingested points and request latency by route', async () => {
    await postJson(`${api.url}/v1/runs`, trainBody());
    await postJson(`${api.url}/v1/runs`, trainBody());
    const external = await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'x' });
    await postJson(`${api.url}/v1/runs/${external.json.id}/metrics`, {
      points: [1, 2, 3].map((step) => ({ name: 'loss', step, value: step })),
    });
    await postJson(`${api.url}/v1/runs/${external.json.id}/metrics`, {
      points: [3, 4].map((step) => ({ name: 'loss', step, value: step })),
    });
    await db.prisma.worker.create({ data: { id: 'w-1', host: 'h' } });

    const { text } = await scrape();
    expect(sample(text, 'gq_jobs{queue="training",state="prioritized"}')).toBe(2);
    expect(sample(text, 'gq_jobs{queue="training",state="active"}')).toBe(0);
    expect(sample(text, 'gq_workers')).toBe(1);
    expect(sample(text, 'gq_metric_points_ingested_total')).toBe(4);
    expect(
      sample(
        text,
        'gq_http_request_duration_seconds_count{method="POST",route="/v1/runs",status="201"}',
      ),
    ).toBe(3);
    expect(text).toMatch(/^gq_process_resident_memory_bytes \d+/m);
  });

  it('counts started, completed and failed jobs and their durations from BullMQ events', async () => {
    const ids = (await queue.queue.getJobs(['prioritized'])).map((j) => j.id);
    expect(ids).toHaveLength(2);
    let n = 0;
    const worker = new Worker(
      TRAINING_QUEUE,
      async () => {
        await new Promise((r) => setTimeout(r, 50));
        if (n++ === 1) throw new UnrecoverableError('boom'); // failed for good, no retry
        return { ok: true };
      },
      { connection: { url: REDIS_URL }, prefix: queue.prefix },
    );
    try {
      await expect
        .poll(
          async () =>
            sample(
              (await scrape()).text,
              'gq_job_duration_seconds_count{queue="training",outcome="failed"}',
            ),
          {
            timeout: 15_000,
          },
        )
        .toBe(1);
      const { text } = await scrape();
      expect(sample(text, 'gq_jobs_started_total{queue="training"}')).toBe(2);
      expect(sample(text, 'gq_jobs_completed_total{queue="training"}')).toBe(1);
      expect(sample(text, 'gq_jobs_failed_total{queue="training"}')).toBe(1);
      expect(
        sample(text, 'gq_job_duration_seconds_count{queue="training",outcome="completed"}'),
      ).toBe(1);
      expect(sample(text, 'gq_jobs{queue="training",state="completed"}')).toBe(1);
    } finally {
      await worker.close();
    }
  });

  it('is open with PROMETHEUS_AUTH=none', async () => {
    const open = await startApi(db, queue.queue, { PROMETHEUS_AUTH: 'none' });
    try {
      const res = await fetch(`${open.url}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^# HELP gq_jobs /m);
    } finally {
      await open.close();
    }
  });
});
