/**
 * The API's errors and the one middleware that maps them to RFC 9457 problem+json responses.
 * Nothing else writes error responses; no stack trace, SQL or path ever reaches a client.
 */
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { z } from 'zod';
import type { Logger } from '../logger.js';

export interface FieldError {
  /** Where the problem is: `body.train.batchSize`, `query.limit`, `header.idempotency-key`. */
  path: string;
  message: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
    readonly errors: FieldError[] = [],
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

function problem(status: number, title: string, detail: string, errors: FieldError[] = []) {
  return { type: 'about:blank', title, status, detail, ...(errors.length > 0 ? { errors } : {}) };
}

export const notFoundHandler: RequestHandler = (req, res) => {
  res
    .status(404)
    .type('application/problem+json')
    .json(problem(404, 'Not Found', `no route for ${req.method} ${req.path}`));
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (error instanceof HttpError) {
      res
        .status(error.status)
        .type('application/problem+json')
        .json(problem(error.status, error.title, error.message, error.errors));
      return;
    }
    // body-parser's errors carry a status (400 malformed JSON, 413 too large, 415 ...).
    const status =
      (error as { status?: number; statusCode?: number }).status ??
      (error as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const message =
        (error as { type?: string }).type === 'entity.parse.failed'
          ? 'the body is not valid JSON'
          : (error as Error).message;
      res
        .status(status)
        .type('application/problem+json')
        .json(problem(status, STATUS_CODES[status] ?? 'Bad Request', message));
      return;
    }
    logger.error({ err: error, method: req.method, path: req.path }, 'unhandled error');
    res
      .status(500)
      .type('application/problem+json')
      .json(problem(500, 'Internal Server Error', 'the server could not complete the request'));
  };
}
