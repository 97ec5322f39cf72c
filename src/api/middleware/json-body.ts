/**
 * JSON bodies, read with express.json within their route's size limit, refused early where the
 * request shows them unusable:
 *
 * - a body over the limit gets its 413 from its Content-Length, or as soon as a chunked body
 *   passes it (oversized-body.ts);
 * - a body nesting arrays and objects deeper than BODY_MAX_DEPTH gets 400 before it is parsed;
 * - a compressed body that does not decompress (gzip, deflate, br) gets 400, not 500.
 */
import express, { type NextFunction, type Request, type RequestHandler } from 'express';
import { HttpError } from '../errors.js';
import { JsonTooDeepError, jsonNestingExceeds } from './json-depth.js';
import { refuseOversizedBody } from './oversized-body.js';

export interface JsonBodyLimits {
  /** BODY_LIMIT_BYTES: every JSON body but those of `largeBody` routes. */
  bodyLimitBytes: number;
  /** METRICS_BODY_LIMIT_BYTES: bodies of requests `largeBody` picks. */
  largeBodyLimitBytes: number;
  /** BODY_MAX_DEPTH. */
  maxDepth: number;
  /** The requests allowed the large limit (metric ingest). */
  largeBody(req: Request): boolean;
}

export function jsonBody(limits: JsonBodyLimits): RequestHandler {
  const verify = (_req: unknown, _res: unknown, body: Buffer) => {
    if (jsonNestingExceeds(body, limits.maxDepth)) throw new JsonTooDeepError(limits.maxDepth);
  };
  const small = express.json({ limit: limits.bodyLimitBytes, verify });
  const large = express.json({ limit: limits.largeBodyLimitBytes, verify });
  return (req, res, next) => {
    const isLarge = limits.largeBody(req);
    const limit = isLarge ? limits.largeBodyLimitBytes : limits.bodyLimitBytes;
    const answered = req.is('application/json')
      ? refuseOversizedBody(req, res, limit)
      : () => false;
    (isLarge ? large : small)(req, res, (error?: unknown) => {
      // Answered already, from the stream: body-parser's own 413 comes after the whole body.
      if (answered()) return;
      decompressionErrorsAs400(req, next)(error);
    });
  };
}

/**
 * zlib's errors on a body that is not what its Content-Encoding says (`Z_DATA_ERROR`, brotli's
 * `ERR__ERROR_FORMAT_…`): body-parser passes them on with status 400 but, unlike its own
 * errors, without a `type`.
 */
function isDecompressionError(req: Request, error: unknown): boolean {
  const { code, type, status } = (error ?? {}) as {
    code?: unknown;
    type?: unknown;
    status?: unknown;
  };
  const encoded = (req.get('content-encoding') ?? 'identity').toLowerCase() !== 'identity';
  return (
    encoded &&
    type === undefined &&
    (status === 400 || (typeof code === 'string' && /^(Z_|ERR__ERROR_|ERR_BROTLI)/.test(code)))
  );
}

function decompressionErrorsAs400(req: Request, next: NextFunction): NextFunction {
  return (error?: unknown) => {
    if (error !== undefined && isDecompressionError(req, error)) {
      const encoding = req.get('content-encoding');
      next(new HttpError(400, 'Bad Request', `the body is not valid ${encoding} data`));
      return;
    }
    next(error as Error);
  };
}
