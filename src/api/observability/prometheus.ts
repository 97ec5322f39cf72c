/**
 * Prometheus metrics of the API process (`GET /metrics`, text format, prom-client):
 *
 * - `gq_jobs{queue,state}`: jobs per queue state, read from BullMQ at scrape time;
 * - `gq_workers`: workers seen in the last minute (Postgres), read at scrape time;
 * - `gq_jobs_started_total`, `gq_jobs_completed_total`, `gq_jobs_failed_total` and
 *   `gq_job_duration_seconds`: from BullMQ's queue events, which every API replica receives, so
 *   each replica reports the cluster's totals (aggregate across replicas with max, not sum);
 * - `gq_http_request_duration_seconds{method,route,status}`: API latency, by route pattern;
 * - `gq_metric_points_ingested_total`: points stored through `POST /v1/runs/:id/metrics`;
 * - Node's default process metrics (`gq_process_*`, `gq_nodejs_*`).
 */
import type { Queue, QueueEvents } from 'bullmq';
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PrismaClient } from '../../db/index.js';
import { COUNTED_JOB_STATES } from '../../queue/job-states.js';
import { aliveSince } from '../../queue/worker-liveness.js';

export interface ApiMetrics {
  registry: Registry;
  /** Observes every request's latency; mount before the routes. */
  httpLatency: RequestHandler;
  ingestedPoints: Counter;
}

export function createApiMetrics(deps: {
  queue: Queue;
  prisma: PrismaClient;
  /** BullMQ events of the training queue; without them the job counters stay at 0. */
  jobEvents?: QueueEvents;
}): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gq_' });
  const { queue, prisma } = deps;

  new Gauge({
    name: 'gq_jobs',
    help: 'Jobs in the queue, per state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const counts = await queue.getJobCounts(...COUNTED_JOB_STATES);
      for (const [state, n] of Object.entries(counts)) this.set({ queue: queue.name, state }, n);
    },
  });
  new Gauge({
    name: 'gq_workers',
    help: 'Workers seen in the last minute',
    registers: [registry],
    async collect() {
      this.set(
        await prisma.worker.count({
          where: { lastSeenAt: { gte: aliveSince() } },
        }),
      );
    },
  });

  const started = new Counter({
    name: 'gq_jobs_started_total',
    help: 'Jobs a worker took (each attempt)',
    labelNames: ['queue'],
    registers: [registry],
  });
  const completed = new Counter({
    name: 'gq_jobs_completed_total',
    help: 'Jobs that finished without error',
    labelNames: ['queue'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'gq_jobs_failed_total',
    help: 'Jobs that failed for good (retries spent, or an unrecoverable error)',
    labelNames: ['queue'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'gq_job_duration_seconds',
    help: 'Time from a worker taking a job to its end',
    labelNames: ['queue', 'outcome'],
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 48 * 3600],
    registers: [registry],
  });
  started.inc({ queue: queue.name }, 0);
  completed.inc({ queue: queue.name }, 0);
  failed.inc({ queue: queue.name }, 0);

  const observeDuration = async (jobId: string, outcome: string): Promise<void> => {
    const job = await queue.getJob(jobId);
    if (job?.processedOn && job.finishedOn)
      duration.observe({ queue: queue.name, outcome }, (job.finishedOn - job.processedOn) / 1000);
  };
  const events = deps.jobEvents;
  if (events) {
    events.on('active', () => started.inc({ queue: queue.name }));
    events.on('completed', ({ jobId }) => {
      completed.inc({ queue: queue.name });
      void observeDuration(jobId, 'completed').catch(() => undefined);
    });
    events.on('failed', ({ jobId }) => {
      failed.inc({ queue: queue.name });
      void observeDuration(jobId, 'failed').catch(() => undefined);
    });
  }

  const latency = new Histogram({
    name: 'gq_http_request_duration_seconds',
    help: 'API request latency',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const httpLatency: RequestHandler = (req, res, next) => {
    const end = latency.startTimer();
    res.on('finish', () => {
      // The route pattern, not the URL: run ids would make a series per run.
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };

  const ingestedPoints = new Counter({
    name: 'gq_metric_points_ingested_total',
    help: 'Metric points stored through POST /v1/runs/:id/metrics',
    registers: [registry],
  });

  return { registry, httpLatency, ingestedPoints };
}
