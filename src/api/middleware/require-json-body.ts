import type { RequestHandler } from 'express';
import { HttpError } from '../errors.js';

/**
 * 415 for a request that carries a body that is not JSON. Without this, express.json() skips
 * such a body and the handler sees none, which would surface as a confusing 400. `rawTypes` are
 * the media types of routes that take bytes (images): those pass, for their route to read.
 */
export function requireJsonBody(rawTypes: readonly string[] = []): RequestHandler {
  return (req, _res, next) => {
    const length = req.get('content-length');
    const hasBody = req.get('transfer-encoding') !== undefined || (length ?? '0') !== '0';
    if (hasBody && !req.is('application/json') && !(rawTypes.length > 0 && req.is([...rawTypes]))) {
      throw new HttpError(
        415,
        'Unsupported Media Type',
        `send the body as application/json (got ${req.get('content-type') ?? 'no Content-Type'})`,
      );
    }
    next();
  };
}
