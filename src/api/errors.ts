/**
 * The API's errors and the one middleware that maps them to RFC 9457 problem+json responses.
 * Nothing else writes error responses; no stack trace, SQL or path ever reaches a client: an
 * error that is not an HttpError, a run domain error (src/runs/run-errors.ts) or a known
 * body-parser error is logged and answered with a bare 500. Services throw domain errors; this
 * file alone decides their HTTP status.
 */
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { SeriesLimitError } from '../db/metric-series.js';
import type { Logger } from '../logger.js';
import {
  CheckpointUnusableError,
  ModelNotExportableError,
  ModelUnavailableError,
  QueueUnavailableError,
  RunConflictError,
  RunNotFoundError,
  UnusableInputError,
} from '../runs/run-errors.js';
import { describeOutage, OUTAGE_RETRY_AFTER_SECONDS } from './outage-errors.js';

/** `type` of each problem this API answers with: stable identifiers clients can switch on. */
export const PROBLEM_TYPES = {
  400: 'urn:googlenet-queue:problem:invalid-request',
  401: 'urn:googlenet-queue:problem:unauthorized',
  403: 'urn:googlenet-queue:problem:forbidden',
  404: 'urn:googlenet-queue:problem:not-found',
  409: 'urn:googlenet-queue:problem:conflict',
  413: 'urn:googlenet-queue:problem:payload-too-large',
  415: 'urn:googlenet-queue:problem:unsupported-media-type',
  422: 'urn:googlenet-queue:problem:unprocessable',
  429: 'urn:googlenet-queue:problem:rate-limited',
  500: 'urn:googlenet-queue:problem:internal',
  503: 'urn:googlenet-queue:problem:unavailable',
} as const;

/**
 * Every status the API answers a problem with. HttpError and problem() take only these, so a
 * new status cannot be answered before it has its `type` above.
 */
export type ProblemStatus = keyof typeof PROBLEM_TYPES;

export interface FieldError {
  /** Where the problem is: `body.train.batchSize`, `query.limit`, `header.idempotency-key`. */
  path: string;
  message: string;
}

/** The body of every error response (`application/problem+json`). */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type Problem = z.infer<typeof problemSchema>;

export class HttpError extends Error {
  constructor(
    readonly status: ProblemStatus,
    readonly title: string,
    detail: string,
    readonly errors: FieldError[] = [],
    /** Response headers that go with the problem (`WWW-Authenticate`, `Retry-After`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'HttpError';
  }
}

export class NotFoundError extends HttpError {
  constructor(what: string) {
    super(404, 'Not Found', `${what} does not exist`);
  }
}

export class UnauthorizedError extends HttpError {
  constructor(detail: string) {
    super(401, 'Unauthorized', detail, [], {
      'WWW-Authenticate': 'Bearer realm="googlenet-queue"',
    });
  }
}

export class ForbiddenError extends HttpError {
  constructor(detail: string) {
    super(403, 'Forbidden', detail);
  }
}

export class ValidationError extends HttpError {
  constructor(where: string, error: z.ZodError) {
    const errors = error.issues.map((issue) => ({
      path: [where, ...issue.path.map(String)].join('.'),
      message: issue.message,
    }));
    super(400, 'Invalid request', errors.map((e) => `${e.path}: ${e.message}`).join('; '), errors);
  }
}

/** Parses `value` with `schema`, or throws a 400 naming every bad field under `where`. */
export function parseOr400<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(where, result.error);
  return result.data;
}

export function problem(
  status: ProblemStatus,
  title: string,
  detail: string,
  errors: FieldError[] = [],
): Problem {
  return {
    type: PROBLEM_TYPES[status],
    title,
    status,
    detail,
    ...(errors.length > 0 ? { errors } : {}),
  };
}

export function sendProblem(res: Response, body: Problem, headers: Record<string, string> = {}) {
  res.status(body.status).set(headers).type('application/problem+json').json(body);
}

export const notFoundHandler: RequestHandler = (req, res) => {
  sendProblem(res, problem(404, 'Not Found', `no route for ${req.method} ${req.path}`));
};

/**
 * body-parser's errors (`type` names the failure): our own words for each, since its messages
 * can quote the body or name internals.
 */
export const BODY_PARSER_ERRORS: Record<string, (limit: unknown) => [ProblemStatus, string]> = {
  'entity.parse.failed': () => [400, 'the body is not valid JSON'],
  'entity.too.large': (limit) => [413, `the body is larger than the limit of ${limit} bytes`],
  'entity.too.deep': (limit) => [
    400,
    `the body nests arrays and objects deeper than the limit of ${limit} (BODY_MAX_DEPTH)`,
  ],
  'entity.verify.failed': () => [400, 'the body was refused'],
  'encoding.unsupported': () => [415, 'the content encoding is not supported'],
  'charset.unsupported': () => [415, 'the charset is not supported; send UTF-8 JSON'],
  'request.aborted': () => [400, 'the request was aborted'],
  'request.size.invalid': () => [400, 'the body is not as long as Content-Length says'],
};

const OUTAGE_RETRY_AFTER = { 'Retry-After': String(OUTAGE_RETRY_AFTER_SECONDS) };

/** The HTTP face of the run domain's errors (src/runs/run-errors.ts); undefined for others. */
export function domainErrorToHttp(error: unknown): HttpError | undefined {
  if (error instanceof RunNotFoundError) return new HttpError(404, 'Not Found', error.message);
  if (error instanceof RunConflictError) return new HttpError(409, 'Conflict', error.message);
  if (error instanceof QueueUnavailableError)
    return new HttpError(503, 'Service Unavailable', error.message, [], OUTAGE_RETRY_AFTER);
  if (error instanceof CheckpointUnusableError)
    return new HttpError(409, 'Checkpoint unusable', error.message);
  if (error instanceof ModelNotExportableError)
    return new HttpError(422, 'Not exportable', error.message);
  if (error instanceof ModelUnavailableError) {
    const retryAfter = { 'Retry-After': String(error.retryAfterSeconds) };
    return new HttpError(503, 'Service Unavailable', error.message, [], retryAfter);
  }
  if (error instanceof SeriesLimitError)
    return new HttpError(422, 'Unprocessable Content', error.message, [
      { path: 'body.points', message: error.message },
    ]);
  if (error instanceof UnusableInputError) {
    const errors = [{ path: error.field, message: error.message }];
    return error.malformed
      ? new HttpError(400, 'Invalid request', error.detail, errors)
      : new HttpError(422, 'Unprocessable Content', error.detail, errors);
  }
  // Redis or PostgreSQL unreachable (src/api/outage-errors.ts): nothing was done, try again.
  const outage = describeOutage(error);
  if (outage) {
    const detail = `${outage}; retry in ${OUTAGE_RETRY_AFTER_SECONDS} s`;
    return new HttpError(503, 'Service Unavailable', detail, [], OUTAGE_RETRY_AFTER);
  }
  return undefined;
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (thrown: unknown, req, res, _next) => {
    const error = domainErrorToHttp(thrown) ?? thrown;
    if (res.headersSent) {
      logger.error({ err: error, method: req.method, path: req.path }, 'error after response');
      res.end();
      return;
    }
    if (error instanceof HttpError) {
      sendProblem(
        res,
        problem(error.status, error.title, error.message, error.errors),
        error.headers,
      );
      return;
    }
    const bodyError = error as { type?: unknown; limit?: unknown };
    const known = typeof bodyError.type === 'string' ? BODY_PARSER_ERRORS[bodyError.type] : null;
    if (known) {
      const [status, detail] = known(bodyError.limit);
      sendProblem(res, problem(status, STATUS_CODES[status] ?? 'Bad Request', detail));
      return;
    }
    logger.error({ err: error, method: req.method, path: req.path }, 'unhandled error');
    sendProblem(
      res,
      problem(500, 'Internal Server Error', 'the server could not complete the request'),
    );
  };
}
