/**
 * The HTTP API. `createApp(deps)` builds it from connections made elsewhere (main.ts, tests),
 * so nothing connects at import time.
 */
import type { Queue } from 'bullmq';
import express, { type Express } from 'express';
import type { CancelRequests } from '../cancel-requests.js';
import type { PrismaClient } from '../db/index.js';
import type { Logger } from '../logger.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { createHealthRouter } from './health/health.router.js';
import { createModelsRouter } from './models/models.router.js';
import type { RunModelsService } from './models/run-models.service.js';
import { createQueuesRouter } from './queues/queues.router.js';
import { createRunsRouter } from './runs/runs.router.js';
import { createRunsService } from './runs/runs.service.js';

export interface AppDeps {
  prisma: PrismaClient;
  /** Where cancel requests for running runs are left for their workers. */
  cancels: CancelRequests;
  /** The training queue. */
  queue: Queue;
  logger: Logger;
  /** Trained models: export and prediction (TensorFlow.js loads on first use). */
  models: RunModelsService;
  /** Largest image body `POST /v1/runs/:id/predict` accepts (PREDICT_MAX_BYTES). */
  maxImageBytes: number;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));
  app.use(createHealthRouter(deps));
  app.use('/v1/runs', createRunsRouter(createRunsService(deps)));
  app.use('/v1/runs', createModelsRouter(deps.models, deps.maxImageBytes));
  app.use('/v1/queues', createQueuesRouter(deps));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
