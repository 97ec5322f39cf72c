/**
 * A typed client for the REST API. Its request and response types are inferred from the zod
 * schemas the server validates with (type-only imports: the client loads no server code).
 *
 *   const gq = createApiClient({ baseUrl: 'http://localhost:8080', apiKey: process.env.KEY });
 *   const run = await gq.submit({ kind: 'train', model, dataset, train });
 *
 * External runs (a trainer elsewhere logging here):
 *
 *   const run = await gq.createExternal({ kind: 'external', name: 'notebook' });
 *   await gq.logMetrics(run.id, [{ name: 'loss', step: 1, value: 0.9 }]); // resending is harmless
 *   await gq.finish(run.id, { status: 'succeeded' });
 *
 * Not here yet: `events(id)` (the SSE stream `GET /v1/runs/:id/events`).
 */
import type { Problem } from '../api/errors.js';
import type { QueuesResponse } from '../api/queues/queues.routes.js';
import type {
  CheckpointsResponse,
  CreateTrainRunInput,
  ListRunsQuery,
  RunListResponse,
  RunResponse,
} from '../api/runs/runs.schemas.js';
import type { z } from 'zod';
import type { ingestMetricsBody } from '../api/metrics/metrics.schemas.js';
import type { createExternalRunBody, finishRunBody } from '../api/runs/runs.schemas.js';

export type CreateExternalRunInput = z.input<typeof createExternalRunBody>;
export type FinishRunInput = z.input<typeof finishRunBody>;
export type MetricPointInput = z.input<typeof ingestMetricsBody>['points'][number];

/** Which part of which series `metrics` and `compare` answer. */
export interface SeriesQuery {
  names?: string[];
  fromStep?: number;
  toStep?: number;
  /** Most points per series (buckets with min/max/count above it). @defaultValue 1000 */
  maxPoints?: number;
}
import type { CompareMetricsResponse, MetricsResponse } from '../api/metrics/metrics.schemas.js';

export type {
  CheckpointsResponse,
  CreateTrainRunInput,
  ListRunsQuery,
  MetricsResponse,
  Problem,
  QueuesResponse,
  RunListResponse,
  RunResponse,
};

export interface ApiClientOptions {
  /** `http://host:port` of the API. */
  baseUrl: string;
  /** An API key (`npm run keys:create`). */
  apiKey: string;
  /** Per-request timeout. @defaultValue 30000 */
  timeoutMs?: number;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

/** A non-2xx answer; `problem` is the server's problem+json body. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.title}: ${problem.detail}`);
  }
}

export const TERMINAL_STATUSES: ReadonlySet<RunResponse['status']> = new Set([
  'succeeded',
  'failed',
  'cancelled',
]);

export interface ApiClient {
  /** Submits a training run; with `idempotencyKey`, a repeat returns the first run. */
  submit(body: CreateTrainRunInput, options?: { idempotencyKey?: string }): Promise<RunResponse>;
  get(id: string): Promise<RunResponse>;
  list(query?: ListRunsQuery): Promise<RunListResponse>;
  cancel(id: string): Promise<RunResponse>;
  metrics(id: string, query?: SeriesQuery): Promise<MetricsResponse>;
  /** The same series of several runs. */
  compare(runIds: string[], query?: SeriesQuery): Promise<CompareMetricsResponse>;
  /** Opens an external run: running at once, never queued. */
  createExternal(
    body: CreateExternalRunInput,
    options?: { idempotencyKey?: string },
  ): Promise<RunResponse>;
  /** Logs points of an external run (≤ 10,000 a call); points sent before are not counted again. */
  logMetrics(
    id: string,
    points: MetricPointInput[],
  ): Promise<{ received: number; inserted: number }>;
  finish(id: string, body: FinishRunInput): Promise<RunResponse>;
  checkpoints(id: string): Promise<CheckpointsResponse>;
  queues(): Promise<QueuesResponse>;
}

function seriesQuery(query: SeriesQuery): Record<string, string | number | undefined> {
  return {
    names: query.names?.join(','),
    fromStep: query.fromStep,
    toStep: query.toStep,
    maxPoints: query.maxPoints,
  };
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function request<T>(
    method: 'GET' | 'POST',
    path: string,
    init: {
      query?: Record<string, string | number | undefined>;
      body?: unknown;
      headers?: Record<string, string>;
    } = {},
  ): Promise<T> {
    const url = new URL(base + path);
    for (const [name, value] of Object.entries(init.query ?? {}))
      if (value !== undefined) url.searchParams.set(name, String(value));
    const res = await doFetch(url, {
      method,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        accept: 'application/json',
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const problem =
        json && typeof json === 'object' && 'detail' in json
          ? (json as Problem)
          : {
              type: 'about:blank',
              title: res.statusText,
              status: res.status,
              detail: text.slice(0, 200),
            };
      throw new ApiError(res.status, problem);
    }
    return json as T;
  }

  const runPath = (id: string) => `/v1/runs/${encodeURIComponent(id)}`;

  return {
    submit: (body, { idempotencyKey } = {}) =>
      request('POST', '/v1/runs', {
        body,
        headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
      }),
    get: (id) => request('GET', runPath(id)),
    list: (query = {}) => request('GET', '/v1/runs', { query: { ...query } }),
    cancel: (id) => request('POST', `${runPath(id)}/cancel`),
    metrics: (id, query = {}) =>
      request('GET', `${runPath(id)}/metrics`, { query: seriesQuery(query) }),
    compare: (runIds, query = {}) =>
      request('GET', '/v1/metrics', { query: { runIds: runIds.join(','), ...seriesQuery(query) } }),
    createExternal: (body, { idempotencyKey } = {}) =>
      request('POST', '/v1/runs', {
        body,
        headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
      }),
    logMetrics: (id, points) => request('POST', `${runPath(id)}/metrics`, { body: { points } }),
    finish: (id, body) => request('POST', `${runPath(id)}/finish`, { body }),
    checkpoints: (id) => request('GET', `${runPath(id)}/checkpoints`),
    queues: () => request('GET', '/v1/queues'),
  };
}
