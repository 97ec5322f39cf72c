/**
 * The dead-letter view: failed runs with their errors, and retrying one from its checkpoint.
 */
import { problemSchema } from '../errors.js';
import { defineRoute, type RouteSpec } from '../route.js';
import {
  deadLetterQuery,
  deadLetterResponse,
  retryRunBody,
  runIdParams,
  runResponse,
} from '../runs/runs.schemas.js';
import { runView, type RunsService } from '../runs/runs.service.js';

export function deadLetterRoutes(service: RunsService): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/dead-letter',
      tag: 'dead-letter',
      summary:
        'Failed runs, newest first, with their errors and what the queue knows of their jobs',
      request: { query: deadLetterQuery },
      responses: { 200: { description: 'One page of failed runs', schema: deadLetterResponse } },
      async handle({ query }, res) {
        res.json(await service.listDeadLetters(query));
      },
    }),

    defineRoute({
      method: 'post',
      path: '/v1/runs/:id/retry',
      tag: 'dead-letter',
      summary: 'Put a failed run back in the queue; it resumes from its newest checkpoint',
      request: { params: runIdParams, body: retryRunBody },
      responses: {
        202: { description: 'Queued again, with a fresh job and attempts', schema: runResponse },
        409: { description: 'The run is not failed', schema: problemSchema },
      },
      async handle({ params }, res) {
        res.status(202).json(runView(await service.retryRun(params.id)));
      },
    }),
  ];
}
