/**
 * The HTTP API. `createApp(deps)` builds it from connections made elsewhere (main.ts, tests),
 * so nothing connects at import time.
 *
 * Open: /healthz, /readyz, /openapi.json, /docs, the dashboard's static files (/, /runs/:id,
 * /ui/...; the page asks for a key), and /metrics when PROMETHEUS_AUTH=none. Everything under
 * /v1 and /admin (bull-board at /admin/queues) goes through,
 * in order: API key (401), rate limit per key (429), scope (403), JSON content type (415), body
 * size (413, from Content-Length when it says), nesting depth (400) and JSON syntax (400),
 * prototype-pollution keys (400), NULs and lone surrogates Postgres cannot store (400); then the
 * route validates its parameters, query, headers and body with its zod schemas (400).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue, QueueEvents } from 'bullmq';
import cors from 'cors';
import express, { Router, type Express } from 'express';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import type { CancelRequests } from '../queue/cancel-requests.js';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { RetryPolicy } from '../queue/enqueue-run.js';
import { createRunEventPublisher, type RunEventPublisher } from '../queue/run-events.js';
import { createApiKeyStore, type ApiKeyStore } from './auth/api-key-store.js';
import { authenticate, authorize } from './auth/authenticate.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { createDashboardRouter } from './dashboard/dashboard.router.js';
import { deadLetterRoutes } from './dead-letter/dead-letter.routes.js';
import { eventsRoutes } from './events/events.routes.js';
import { createRunEventHub, type RunEventHub } from './events/run-event-hub.js';
import { createEventStreams, eventStreamLimits, type EventStreams } from './events/event-stream.js';
import { INGEST_PATH, metricsRoutes } from './metrics/metrics.routes.js';
import { createMetricsService } from './metrics/metrics.service.js';
import { createApiMetrics, type ApiMetrics } from './observability/prometheus.js';
import { createHealthRouter } from './health/health.router.js';
import { modelsRoutes } from './models/models.routes.js';
import type { RunModelsService } from './models/run-models.service.js';
import { rateLimitPerKey } from './middleware/rate-limit.js';
import { createFailedAuthLimit } from './auth/failed-auth-limit.js';
import { rejectPrototypeKeys } from './middleware/reject-prototype-keys.js';
import { rejectUnstorableText } from './middleware/reject-unstorable-text.js';
import { requireJsonBody } from './middleware/require-json-body.js';
import { jsonBody } from './middleware/json-body.js';
import { createDocsRouter } from './openapi/docs.router.js';
import { buildOpenApiDocument } from './openapi/openapi-document.js';
import { queuesRoutes } from './queues/queues.routes.js';
import { mountRoutes, type RouteSpec } from './route.js';
import { runsRoutes } from './runs/runs.routes.js';
import { createRunsService } from './runs/runs.service.js';

/** Path prefixes that need an API key. */
export const PROTECTED_PREFIXES = ['/v1', '/admin'] as const;

export type AppConfig = Pick<
  Config,
  | 'QUEUE_PREFIX'
  | 'BODY_LIMIT_BYTES'
  | 'METRICS_BODY_LIMIT_BYTES'
  | 'BODY_MAX_DEPTH'
  | 'METRICS_MAX_SERIES_PER_RUN'
  | 'METRICS_MAX_POINTS_PER_READ'
  | 'PROMETHEUS_AUTH'
  | 'RATE_LIMIT_MAX'
  | 'RATE_LIMIT_WINDOW_SECONDS'
  | 'AUTH_FAILURE_MAX'
  | 'AUTH_FAILURE_WINDOW_SECONDS'
  | 'EVENT_STREAM_BUFFER_BYTES'
  | 'EVENT_MAX_BYTES'
  | 'EVENT_STREAMS_PER_KEY'
  | 'EVENT_STREAM_KEY_CHECK_MS'
  | 'EVENT_SUBSCRIBE_TIMEOUT_MS'
  | 'CORS_ORIGINS'
  | 'TRUST_PROXY'
  | 'DATA_ROOT'
  | 'DATA_MAX_BYTES'
  | 'DATA_MAX_IMAGES'
  | 'JOB_MEMORY_CAP_BYTES'
  | 'DATA_PREFETCH_BATCHES'
>;

export interface AppDeps {
  prisma: PrismaClient;
  /** Where cancel requests for running runs are left for their workers. */
  cancels: CancelRequests;
  /** The training queue. */
  queue: Queue;
  /** Redis for rate-limit counters (shared by every API replica). */
  redis: Redis;
  logger: Logger;
  config: AppConfig;
  /** API keys; by default the ones in `prisma`. */
  apiKeys?: ApiKeyStore;
  /** Retries of training jobs (default: 3 attempts, 5 s first backoff). */
  retry?: RetryPolicy;
  /** Trained models: export and prediction (TensorFlow.js loads on first use). */
  models: RunModelsService;
  /** Largest image body `POST /v1/runs/:id/predict` accepts (PREDICT_MAX_BYTES). */
  maxImageBytes: number;
  /** Where run events are published; by default Redis pub/sub on `redis`. */
  events?: RunEventPublisher;
  /**
   * Relays run events to event streams; by default one that opens its own subscriber connection
   * (a duplicate of `redis`) on the first stream. Pass one to close it on shutdown.
   */
  eventHub?: RunEventHub;
  /** The open event streams; pass one to end them on shutdown (`endAll()`). */
  eventStreams?: EventStreams;
  /** BullMQ events of the training queue, for the Prometheus job counters. */
  jobEvents?: QueueEvents;
}

/** What apiRoutes builds once per app and createApp shares with its other parts. */
interface AppParts {
  apiKeys: ApiKeyStore;
  events: RunEventPublisher;
  hub: RunEventHub;
  streams: EventStreams;
  metrics: ApiMetrics;
}

function appParts(deps: AppDeps): AppParts {
  const apiKeys = deps.apiKeys ?? createApiKeyStore(deps.prisma);
  return {
    apiKeys,
    events: deps.events ?? createRunEventPublisher(deps.redis, deps.config.QUEUE_PREFIX),
    hub: deps.eventHub ?? createRunEventHub(deps.redis, deps.config.QUEUE_PREFIX),
    streams:
      deps.eventStreams ??
      createEventStreams({
        limits: eventStreamLimits(deps.config),
        liveKeyIds: (ids) => apiKeys.liveKeyIds(ids),
        logger: deps.logger,
      }),
    metrics: createApiMetrics({
      queue: deps.queue,
      prisma: deps.prisma,
      ...(deps.jobEvents ? { jobEvents: deps.jobEvents } : {}),
    }),
  };
}

/** Every route the API serves under /v1, declared with its schemas (also the OpenAPI source). */
export function apiRoutes(deps: AppDeps, parts: AppParts = appParts(deps)): RouteSpec[] {
  const runs = createRunsService({ ...deps, events: parts.events });
  const metrics = createMetricsService({
    prisma: deps.prisma,
    events: parts.events,
    onIngested: (n) => parts.metrics.ingestedPoints.inc(n),
    limits: {
      maxSeriesPerRun: deps.config.METRICS_MAX_SERIES_PER_RUN,
      maxPointsPerRead: deps.config.METRICS_MAX_POINTS_PER_READ,
    },
  });
  return [
    ...runsRoutes(runs),
    ...modelsRoutes(deps.models, deps.maxImageBytes),
    ...metricsRoutes(metrics),
    ...eventsRoutes({
      prisma: deps.prisma,
      hub: parts.hub,
      streams: parts.streams,
      subscribeTimeoutMs: deps.config.EVENT_SUBSCRIBE_TIMEOUT_MS,
    }),
    ...deadLetterRoutes(runs),
    ...queuesRoutes(deps),
  ];
}

/**
 * JSON bodies up to BODY_LIMIT_BYTES, except metric ingest: 10,000 points need more than 1 MiB,
 * so that one route gets METRICS_BODY_LIMIT_BYTES.
 */
function jsonBodies(config: AppConfig): express.RequestHandler {
  return jsonBody({
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    largeBodyLimitBytes: config.METRICS_BODY_LIMIT_BYTES,
    maxDepth: config.BODY_MAX_DEPTH,
    largeBody: (req) =>
      req.method === 'POST' && INGEST_PATH.test(req.originalUrl.split('?')[0] ?? ''),
  });
}

export function createApp(deps: AppDeps): Express {
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.TRUST_PROXY);
  app.use(
    helmet({
      // The API is often served over plain HTTP on a private network (compose publishes port
      // 8080): upgrading the docs page's requests to https would break it there.
      contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
    }),
  );
  if (config.CORS_ORIGINS.length > 0) {
    app.use(
      cors({
        origin: config.CORS_ORIGINS,
        allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
        exposedHeaders: ['Location', 'Idempotent-Replayed', 'Retry-After', 'RateLimit-Remaining'],
        maxAge: 600,
      }),
    );
  }

  const parts = appParts(deps);
  const routes = apiRoutes(deps, parts);
  app.use(parts.metrics.httpLatency);
  app.use(createHealthRouter(deps));
  app.use(createDashboardRouter());
  app.use(
    createDocsRouter(
      buildOpenApiDocument(routes, {
        title: 'googlenet-queue',
        version: '1',
        description: 'Training job queue for GoogLeNet: submit runs, follow them, cancel them.',
      }),
    ),
  );

  const guard = Router();
  guard.use(
    authenticate(
      parts.apiKeys,
      createFailedAuthLimit({
        redis: deps.redis,
        keyPrefix: config.QUEUE_PREFIX,
        max: config.AUTH_FAILURE_MAX,
        windowSeconds: config.AUTH_FAILURE_WINDOW_SECONDS,
        logger: deps.logger,
      }),
    ),
    rateLimitPerKey({
      redis: deps.redis,
      keyPrefix: config.QUEUE_PREFIX,
      max: config.RATE_LIMIT_MAX,
      windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
      logger: deps.logger,
    }),
    authorize(),
    requireJsonBody([...new Set(routes.flatMap((r) => r.rawBody?.types ?? []))]),
    jsonBodies(config),
    rejectPrototypeKeys(),
    rejectUnstorableText(),
  );
  app.use([...PROTECTED_PREFIXES], guard);
  if (config.PROMETHEUS_AUTH === 'key') app.use('/metrics', guard);
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', parts.metrics.registry.contentType);
    res.send(await parts.metrics.registry.metrics());
  });

  // bull-board's pages, behind the /admin guard (admin scope).
  const board = new ExpressAdapter();
  board.setBasePath('/admin/queues');
  createBullBoard({ queues: [new BullMQAdapter(deps.queue)], serverAdapter: board });
  app.use('/admin/queues', board.getRouter());

  const api = Router();
  mountRoutes(api, routes);
  app.use(api);

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
