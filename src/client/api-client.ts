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
 * Live events of a run (Server-Sent Events, `GET /v1/runs/:id/events`):
 *
 *   for await (const event of gq.events(run.id, { signal })) {
 *     if (event.type === 'progress') showProgress(event.step, event.totalSteps);
 *   }
 *
 * `gq.allEvents({ signal })` is the same for every run (status, progress and checkpoint events),
 * for a runs list.
 *
 * An eval run goes through `submit` too: `gq.submit({ kind: 'eval', checkpoint: { runId, which:
 * 'best' }, dataset })`.
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
import type {
  createEvalRunBody,
  createExternalRunBody,
  finishRunBody,
} from '../api/runs/runs.schemas.js';
import type { RunEvent } from '../queue/run-events.js';
import type { TooLargeEvent } from '../api/events/event-stream.js';
import { readSseFrames } from './sse.js';

export type CreateEvalRunInput = z.input<typeof createEvalRunBody>;
export type CreateExternalRunInput = z.input<typeof createExternalRunBody>;
export type FinishRunInput = z.input<typeof finishRunBody>;
export type MetricPointInput = z.input<typeof ingestMetricsBody>['points'][number];

/**
 * An event of a run's stream: a `RunEvent` as workers and the API publish it, except that the
 * `status` event opening each connection also carries the run's `progress` as it is now, and
 * that an event over the server's EVENT_MAX_BYTES arrives as a `too-large` notice (read the run
 * again).
 */
export type RunStreamEvent =
  | Exclude<RunEvent, { type: 'status' }>
  | (Extract<RunEvent, { type: 'status' }> & { progress?: RunResponse['progress'] })
  | TooLargeEvent;

/**
 * An event of the stream of every run (`GET /v1/events`): `ready` once connected, then each run's
 * status, progress and checkpoint events (metric batches stay on the run's own stream).
 */
export type AllRunsEvent =
  { type: 'ready' } | Exclude<RunEvent, { type: 'metrics' }> | TooLargeEvent;

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
  RunEvent,
  RunListResponse,
  RunResponse,
};

export interface ApiClientOptions {
  /** `http://host:port` of the API. */
  baseUrl: string;
  /** An API key (`npm run keys:create`). */
  apiKey: string;
  /**
   * Per-request timeout. For `events`, only the wait for the answer's headers: a stream lives
   * as long as it is read. @defaultValue 30000
   */
  timeoutMs?: number;
  /**
   * An event stream that brings nothing for this long (the server sends a keepalive every 15 s)
   * is taken for a dead connection and ends, as a dropped one does, so the caller reconnects.
   * @defaultValue 45000
   */
  streamSilenceMs?: number;
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
  /** Submits a training or eval run; with `idempotencyKey`, a repeat returns the first run. */
  submit(
    body: CreateTrainRunInput | CreateEvalRunInput,
    options?: { idempotencyKey?: string },
  ): Promise<RunResponse>;
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
  /**
   * The run's live events, as they happen. The first event of each connection is a `status`
   * event with the run's current status and progress: events announce, they are not the record,
   * so a caller that reconnects after the iteration ends reads the run again (`get`) on that
   * first event and misses nothing that matters. The iteration ends, without throwing, when
   * `signal` aborts or the connection ends (the server closed it, or it broke); it never
   * reconnects by itself. The request is made when iteration starts: a refusal (`404` unknown
   * run, `401`) throws `ApiError` from the first step. `timeoutMs` bounds only the wait for the
   * answer's headers.
   */
  events(id: string, options?: { signal?: AbortSignal }): AsyncIterable<RunStreamEvent>;
  /**
   * Every run's status, progress and checkpoint events, for a live runs list. The first event
   * of each connection is `ready`: read the list after it and no change falls in between. Ends
   * and throws as `events` does.
   */
  allEvents(options?: { signal?: AbortSignal }): AsyncIterable<AllRunsEvent>;
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
  const streamSilenceMs = options.streamSilenceMs ?? 45_000;

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
    if (!res.ok) throw refusal(res, text);
    return parseJson(text) as T;
  }

  /**
   * The Server-Sent Events at `path`, each frame's data parsed as JSON. Shared by every event
   * stream of the API (they frame events alike), so another stream is one line below.
   */
  async function* eventStream<T>(path: string, signal: AbortSignal | undefined): AsyncGenerator<T> {
    // The timeout covers the wait for the headers only; the stream itself may live for hours,
    // as long as something (an event, a keepalive) arrives every streamSilenceMs.
    const connecting = new AbortController();
    const silent = new AbortController();
    const timer = setTimeout(
      () => connecting.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
      timeoutMs,
    );
    let res: Response;
    try {
      res = await doFetch(base + path, {
        headers: { authorization: `Bearer ${options.apiKey}`, accept: 'text/event-stream' },
        signal: AbortSignal.any([connecting.signal, silent.signal, ...(signal ? [signal] : [])]),
      });
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) throw refusal(res, await res.text());
    if (!res.body || !res.headers.get('content-type')?.startsWith('text/event-stream')) {
      await res.body?.cancel();
      throw new Error(
        `${path}: expected text/event-stream, got ${res.headers.get('content-type')}`,
      );
    }
    let silence: NodeJS.Timeout | undefined;
    const heard = (): void => {
      clearTimeout(silence);
      silence = setTimeout(() => silent.abort(), streamSilenceMs);
    };
    heard();
    const frames = readSseFrames(
      res.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            heard();
            controller.enqueue(chunk);
          },
        }),
      ),
    );
    try {
      while (!signal?.aborted) {
        let next: IteratorResult<{ event: string; data: string }>;
        try {
          next = await frames.next();
        } catch {
          // An abort, or a connection that broke: for a stream, both are its end (see `events`).
          return;
        }
        if (next.done || signal?.aborted) return;
        yield JSON.parse(next.value.data) as T;
      }
    } finally {
      clearTimeout(silence);
      // Closes the connection when the caller stops early (`break` in its for-await loop).
      await frames.return(undefined);
    }
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
    events: (id, { signal } = {}) => eventStream(`${runPath(id)}/events`, signal),
    allEvents: ({ signal } = {}) => eventStream('/v1/events', signal),
  };
}

/** The `ApiError` of a non-2xx answer: its problem+json body, or one made from the status. */
function refusal(res: Response, text: string): ApiError {
  const json = parseJson(text);
  const problem =
    json && typeof json === 'object' && 'detail' in json
      ? (json as Problem)
      : {
          type: 'about:blank',
          title: res.statusText,
          status: res.status,
          detail: text.slice(0, 200),
        };
  return new ApiError(res.status, problem);
}

/** A JSON body, or undefined when it is empty or not JSON. */
function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}
