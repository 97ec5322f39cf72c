/**
 * JSON bodies, read with express.json within their route's size limit, refused early where the
 * request shows them unusable:
 *
 * - a Content-Length over the limit gets its 413 from the header, before a byte of the body is
 *   read (body-parser reads the whole declared body before it answers, so a client declaring
 *   2 GB held a connection until it had sent them), and the connection is closed;
 * - a chunked body (no Content-Length) gets its 413 as soon as the bytes received pass the
 *   limit, and the connection is closed: body-parser would read the rest, however long, first;
 * - a body nesting arrays and objects deeper than BODY_MAX_DEPTH gets 400 before it is parsed;
 * - a compressed body that does not decompress (gzip, deflate, br) gets 400, not 500.
 */
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { HttpError, problem, sendProblem } from '../errors.js';
import { JsonTooDeepError, jsonNestingExceeds } from './json-depth.js';

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
    if (req.is('application/json') && Number(req.get('content-length') ?? 0) > limit)
      throw new HttpError(
        413,
        'Payload Too Large',
        `the body is larger than the limit of ${limit} bytes`,
        [],
        // The body is never read: the connection cannot carry another request after it.
        { Connection: 'close' },
      );
    const answered = answerOversizedStream(req, res, limit);
    (isLarge ? large : small)(req, res, (error?: unknown) => {
      // Answered already, from the stream: body-parser's own 413 comes after the whole body.
      if (answered()) return;
      decompressionErrorsAs400(req, next)(error);
    });
  };
}

/**
 * For a body without Content-Length: counts its bytes as they arrive and, past `limit`, answers
 * 413 at once and closes the connection once the answer is out. Returns whether it answered.
 */
function answerOversizedStream(req: Request, res: Response, limit: number): () => boolean {
  let answered = false;
  if (req.get('content-length') !== undefined || !req.is('application/json')) return () => false;
  let received = 0;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received <= limit) return;
    req.off('data', count);
    if (res.headersSent) return;
    answered = true;
    res.on('finish', () => req.socket.destroy());
    sendProblem(
      res,
      problem(413, 'Payload Too Large', `the body is larger than the limit of ${limit} bytes`),
      { Connection: 'close' },
    );
  };
  req.on('data', count);
  return () => answered;
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
