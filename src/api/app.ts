/**
 * The HTTP API. `createApp(deps)` builds it from connections made elsewhere (main.ts, tests),
 * so nothing connects at import time.
 *
 * Open: /healthz, /readyz, /openapi.json, /docs. Everything under /v1 and /admin goes through,
 * in order: API key (401), rate limit per key (429), scope (403), JSON content type (415), body
 * size (413) and JSON syntax (400), prototype-pollution keys (400); then the route validates
 * its parameters, query, headers and body with its zod schemas (400).
 */
import type { Queue } from 'bullmq';
import cors from 'cors';
import express, { Router, type Express } from 'express';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import type { CancelRequests } from '../cancel-requests.js';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/index.js';
import type { Logger } from '../logger.js';
import type { RetryPolicy } from '../run-queue.js';
import { createApiKeyStore, type ApiKeyStore } from './auth/api-key-store.js';
import { authenticate, authorize } from './auth/authenticate.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { deadLetterRoutes } from './dead-letter/dead-letter.routes.js';
import { createHealthRouter } from './health/health.router.js';
import { modelsRoutes } from './models/models.routes.js';
import type { RunModelsService } from './models/run-models.service.js';
import { rateLimitPerKey } from './middleware/rate-limit.js';
import { rejectPrototypeKeys } from './middleware/reject-prototype-keys.js';
import { requireJsonBody } from './middleware/require-json-body.js';
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
  | 'RATE_LIMIT_MAX'
  | 'RATE_LIMIT_WINDOW_SECONDS'
  | 'CORS_ORIGINS'
  | 'TRUST_PROXY'
  | 'DATA_ROOT'
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
}

/** Every route the API serves under /v1, declared with its schemas (also the OpenAPI source). */
export function apiRoutes(deps: AppDeps): RouteSpec[] {
  const runs = createRunsService(deps);
  return [
    ...runsRoutes(runs),
    ...modelsRoutes(deps.models, deps.maxImageBytes),
    ...deadLetterRoutes(runs),
    ...queuesRoutes(deps),
  ];
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

  const routes = apiRoutes(deps);
  app.use(createHealthRouter(deps));
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
    authenticate(deps.apiKeys ?? createApiKeyStore(deps.prisma)),
    rateLimitPerKey({
      redis: deps.redis,
      keyPrefix: config.QUEUE_PREFIX,
      max: config.RATE_LIMIT_MAX,
      windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
      logger: deps.logger,
    }),
    authorize(),
    requireJsonBody([...new Set(routes.flatMap((r) => r.rawBody?.types ?? []))]),
    express.json({ limit: config.BODY_LIMIT_BYTES }),
    rejectPrototypeKeys(),
  );
  app.use([...PROTECTED_PREFIXES], guard);

  const api = Router();
  mountRoutes(api, routes);
  app.use(api);

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
