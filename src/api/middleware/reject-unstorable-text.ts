/**
 * PostgreSQL stores neither a NUL character (in text or jsonb) nor a lone UTF-16 surrogate
 * (not UTF-8 at all), and JSON can carry both (`\u0000`, `\ud800`). Accepted, they fail the
 * write with a 500; refused here, anywhere in the body or the query, keys included, with a 400
 * naming where.
 */
import type { RequestHandler } from 'express';
import { HttpError, type FieldError } from '../errors.js';

/** A NUL, or a surrogate that is not half of a pair (the `u` flag matches pairs as one). */
// eslint-disable-next-line no-control-regex -- the NUL is what this looks for
const UNSTORABLE = /\u0000|[\ud800-\udfff]/u;

/** Paths of every string (key or value) in `value` that Postgres cannot store; iterative. */
export function findUnstorableText(value: unknown, root: string): string[] {
  const found: string[] = [];
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') {
      if (UNSTORABLE.test(node)) found.push(path);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    for (const [key, child] of Object.entries(node)) {
      if (UNSTORABLE.test(key)) found.push(`${path} (a key)`);
      else stack.push([child, `${path}.${key}`]);
    }
  }
  return found;
}

export function rejectUnstorableText(): RequestHandler {
  return (req, _res, next) => {
    const paths = [
      ...findUnstorableText(req.body, 'body'),
      ...findUnstorableText(req.query, 'query'),
    ];
    if (paths.length > 0) {
      const errors: FieldError[] = paths.map((path) => ({
        path,
        message: 'holds a NUL character or a lone UTF-16 surrogate, which cannot be stored',
      }));
      throw new HttpError(
        400,
        'Invalid request',
        errors.map((e) => `${e.path}: ${e.message}`).join('; '),
        errors,
      );
    }
    next();
  };
}
