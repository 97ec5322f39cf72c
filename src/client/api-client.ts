/**
 * A typed client for the REST API. Its request and response types are inferred from the zod
 * schemas the server validates with (type-only imports: the client loads no server code).
 *
 *   const gq = createApiClient({ baseUrl: 'http://localhost:8080', apiKey: process.env.KEY });
 *   const run = await gq.submit({ kind: 'train', model, dataset, train });
 *
 * Not here yet, because the server has no such routes on this branch: `events(id)` (the SSE
 * stream `GET /v1/runs/:id/events`) and `logMetrics(...)` for external runs. Both come with the
 * issues that add those routes.
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
import type { MetricsResponse } from '../api/metrics/metrics.schemas.js';

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
  metrics(id: string, query?: { names?: string[]; maxPoints?: number }): Promise<MetricsResponse>;
  checkpoints(id: string): Promise<CheckpointsResponse>;
  queues(): Promise<QueuesResponse>;
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
      request('GET', `${runPath(id)}/metrics`, {
        query: { names: query.names?.join(','), maxPoints: query.maxPoints },
      }),
    checkpoints: (id) => request('GET', `${runPath(id)}/checkpoints`),
    queues: () => request('GET', '/v1/queues'),
  };
}
