/** Metric ingest (external runs) and queries, declared with their schemas (see route.ts). */
import { problemSchema } from '../errors.js';
import { defineRoute, type RouteSpec } from '../route.js';
import { runIdParams } from '../runs/runs.schemas.js';
import {
  compareMetricsQuery,
  compareMetricsResponse,
  ingestMetricsBody,
  ingestMetricsResponse,
  metricsQuery,
  metricsResponse,
} from './metrics.schemas.js';
import type { MetricsService } from './metrics.service.js';

/** The ingest route, whose body may exceed BODY_LIMIT_BYTES (see app.ts). */
export const INGEST_PATH = /^\/v1\/runs\/[^/]+\/metrics\/?$/i;

export function metricsRoutes(service: MetricsService): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/runs/:id/metrics',
      tag: 'metrics',
      summary:
        'Log points of an external run (up to 10,000 a request; idempotent on name and step)',
      request: { params: runIdParams, body: ingestMetricsBody },
      responses: {
        200: {
          description: 'Stored; points sent before are not counted again',
          schema: ingestMetricsResponse,
        },
        409: { description: 'Not an external run, or it has finished', schema: problemSchema },
        422: {
          description: 'The points would give the run more series than METRICS_MAX_SERIES_PER_RUN',
          schema: problemSchema,
        },
      },
      async handle({ params, body }, res) {
        res.json(await service.ingest(params.id, body));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/v1/runs/:id/metrics',
      tag: 'metrics',
      summary:
        "A run's metric series: exact points, or at most maxPoints min/max/last buckets for longer ranges",
      request: { params: runIdParams, query: metricsQuery },
      responses: {
        200: { description: 'The series', schema: metricsResponse },
        422: {
          description: 'Series × maxPoints asked for is more than METRICS_MAX_POINTS_PER_READ',
          schema: problemSchema,
        },
      },
      async handle({ params, query }, res) {
        res.json(await service.runSeries(params.id, query));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/v1/metrics',
      tag: 'metrics',
      summary: 'The same series of several runs (compare view)',
      request: { query: compareMetricsQuery },
      responses: {
        200: { description: 'The series of each run', schema: compareMetricsResponse },
        422: {
          description: 'Series × maxPoints asked for is more than METRICS_MAX_POINTS_PER_READ',
          schema: problemSchema,
        },
      },
      async handle({ query }, res) {
        const { runIds, ...series } = query;
        res.json(await service.compare(runIds, series));
      },
    }),
  ];
}
