import { Router } from 'express';
import { parseOr400 } from '../errors.js';
import {
  createTrainRunBody,
  idempotencyKeyHeader,
  listRunsQuery,
  metricsQuery,
  runIdParam,
} from './runs.schemas.js';
import { runView, type RunsService } from './runs.service.js';

export function createRunsRouter(service: RunsService): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const body = parseOr400(createTrainRunBody, req.body, 'body');
    const rawKey = req.get('Idempotency-Key');
    const key =
      rawKey === undefined
        ? undefined
        : parseOr400(idempotencyKeyHeader, rawKey, 'header.idempotency-key');
    const { run, replayed } = await service.submitTrainRun(body, key);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res
      .status(replayed ? 200 : 201)
      .location(`/v1/runs/${run.id}`)
      .json(runView(run));
  });

  router.post('/:id/cancel', async (req, res) => {
    const { run, accepted } = await service.cancelRun(
      parseOr400(runIdParam, req.params.id, 'path.id'),
    );
    res.status(accepted ? 202 : 200).json(runView(run));
  });

  router.post('/:id/retry', async (req, res) => {
    const run = await service.retryRun(parseOr400(runIdParam, req.params.id, 'path.id'));
    res.status(202).json(runView(run));
  });

  router.get('/', async (req, res) => {
    res.json(await service.listRuns(parseOr400(listRunsQuery, req.query, 'query')));
  });

  router.get('/:id', async (req, res) => {
    res.json(await service.getRun(parseOr400(runIdParam, req.params.id, 'path.id')));
  });

  router.get('/:id/metrics', async (req, res) => {
    const id = parseOr400(runIdParam, req.params.id, 'path.id');
    res.json(await service.getMetrics(id, parseOr400(metricsQuery, req.query, 'query')));
  });

  router.get('/:id/checkpoints', async (req, res) => {
    res.json(await service.getCheckpoints(parseOr400(runIdParam, req.params.id, 'path.id')));
  });

  return router;
}
