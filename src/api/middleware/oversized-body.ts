/**
 * A body over its route's limit is refused before it is read, whatever its type (JSON, an
 * image): body-parser reads (and discards) the whole declared body before it answers 413, so a
 * client declaring 2 GB held a connection, and a chunked body that never ends held it for ever.
 *
 * - a Content-Length over the limit gets its 413 from the header, before a byte is read;
 * - a chunked body (no Content-Length) gets its 413 as soon as the bytes received pass the
 *   limit.
 * Either way the connection is closed after the answer: the rest of the body is never read, so
 * the connection cannot carry another request.
 */
import type { Request, Response } from 'express';
import { HttpError, problem, sendProblem } from '../errors.js';

const tooLarge = (limit: number) => `the body is larger than the limit of ${limit} bytes`;

/**
 * Throws the 413 when the request's Content-Length passes `limit`; otherwise watches a chunked
 * body and answers the 413 itself once it passes. Returns whether it answered (the body reader's
 * own error must then be dropped).
 */
export function refuseOversizedBody(req: Request, res: Response, limit: number): () => boolean {
  const declared = req.get('content-length');
  if (declared !== undefined) {
    if (Number(declared) > limit)
      throw new HttpError(413, 'Payload Too Large', tooLarge(limit), [], { Connection: 'close' });
    return () => false;
  }
  let answered = false;
  let received = 0;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received <= limit) return;
    req.off('data', count);
    if (res.headersSent) return;
    answered = true;
    res.on('finish', () => req.socket.destroy());
    sendProblem(res, problem(413, 'Payload Too Large', tooLarge(limit)), { Connection: 'close' });
  };
  req.on('data', count);
  return () => answered;
}
