/** The /v1/runs routes: request and response schemas beside each handler (see route.ts). */
import { problemSchema } from '../errors.js';
import { defineRoute, type RouteSpec } from '../route.js';
import {
  cancelRunBody,
  checkpointsResponse,
  createRunBody,
  finishRunBody,
  listRunsQuery,
  runIdParams,
  runListResponse,
  runResponse,
  submitRunHeaders,
} from './runs.schemas.js';
import { runView, type RunsService } from './runs.service.js';

export function runsRoutes(service: RunsService): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/runs',
      tag: 'runs',
      summary:
        'Submit a training or eval run (checked, written, then enqueued; the run id is the job id), or open an external run',
      request: { headers: submitRunHeaders, body: createRunBody },
      responses: {
        201: {
          description: 'The new run: queued (train), or running (external: log its points)',
          schema: runResponse,
        },
        200: {
          description:
            'The run first submitted with this Idempotency-Key (`Idempotent-Replayed: true`)',
          schema: runResponse,
        },
        400: {
          description: 'Invalid body, or a dataset.path that leaves DATA_ROOT; nothing was created',
          schema: problemSchema,
        },
        404: {
          description: "An eval's run or checkpoint id does not exist",
          schema: problemSchema,
        },
        422: {
          description:
            "The data set is missing, not of its format, or has other classes than the model; an eval's checkpoint does not exist; the Idempotency-Key was used for another body",
          schema: problemSchema,
        },
        503: {
          description: 'The queue is unreachable; nothing was created',
          schema: problemSchema,
        },
      },
      async handle({ headers, body }, res) {
        const { run, replayed } = await service.submitRun(body, headers['idempotency-key']);
        if (replayed) res.setHeader('Idempotent-Replayed', 'true');
        res
          .status(replayed ? 200 : 201)
          .location(`/v1/runs/${run.id}`)
          .json(runView(run));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/v1/runs',
      tag: 'runs',
      summary: 'List runs, newest first, a page at a time',
      request: { query: listRunsQuery },
      responses: { 200: { description: 'One page of runs', schema: runListResponse } },
      async handle({ query }, res) {
        res.json(await service.listRuns(query));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/v1/runs/:id',
      tag: 'runs',
      summary: 'Show a run with its progress, result and latest metrics',
      request: { params: runIdParams },
      responses: { 200: { description: 'The run', schema: runResponse } },
      async handle({ params }, res) {
        res.json(await service.getRun(params.id));
      },
    }),

    defineRoute({
      method: 'post',
      path: '/v1/runs/:id/cancel',
      tag: 'runs',
      summary: 'Cancel a queued or running run',
      request: { params: runIdParams, body: cancelRunBody },
      responses: {
        200: { description: 'Cancelled at once (it had not started)', schema: runResponse },
        202: {
          description: 'Running: its worker stops it between two steps within seconds',
          schema: runResponse,
        },
        409: { description: 'The run has finished already', schema: problemSchema },
      },
      async handle({ params }, res) {
        const { run, accepted } = await service.cancelRun(params.id);
        res.status(accepted ? 202 : 200).json(runView(run));
      },
    }),

    defineRoute({
      method: 'post',
      path: '/v1/runs/:id/finish',
      tag: 'runs',
      summary: 'End an external run with its final status',
      request: { params: runIdParams, body: finishRunBody },
      responses: {
        200: { description: 'The finished run', schema: runResponse },
        409: { description: 'Not an external run, or not running', schema: problemSchema },
      },
      async handle({ params, body }, res) {
        res.json(runView(await service.finishExternalRun(params.id, body)));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/v1/runs/:id/checkpoints',
      tag: 'runs',
      summary: "A run's checkpoints, oldest first",
      request: { params: runIdParams },
      responses: { 200: { description: 'The checkpoints', schema: checkpointsResponse } },
      async handle({ params }, res) {
        res.json(await service.getCheckpoints(params.id));
      },
    }),
  ];
}
