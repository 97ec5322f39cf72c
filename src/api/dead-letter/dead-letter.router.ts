/** `GET /v1/dead-letter`: failed runs with their errors (retry one with POST /v1/runs/:id/retry). */
import { Router } from 'express';
import { parseOr400 } from '../errors.js';
import { deadLetterQuery } from '../runs/runs.schemas.js';
import type { RunsService } from '../runs/runs.service.js';

export function createDeadLetterRouter(service: RunsService): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    res.json(await service.listDeadLetters(parseOr400(deadLetterQuery, req.query, 'query')));
  });
  return router;
}
