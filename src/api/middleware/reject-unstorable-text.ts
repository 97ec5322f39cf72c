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

/**
 * Paths of every string (key or value) in `value` that Postgres cannot store. Iterative; array
 * elements are visited by index and only objects are stacked (see findPrototypeKeys).
 */
export function findUnstorableText(value: unknown, root: string): string[] {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? [root] : [];
  const found: string[] = [];
  const stack: Array<[object, string]> = [];
  if (value !== null && typeof value === 'object') stack.push([value, root]);
  const visit = (child: unknown, path: () => string) => {
    if (typeof child === 'string') {
      if (UNSTORABLE.test(child)) found.push(path());
    } else if (child !== null && typeof child === 'object') stack.push([child, path()]);
  };
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) visit(node[i], () => `${path}.${i}`);
      continue;
    }
    for (const key of Object.keys(node)) {
      if (UNSTORABLE.test(key)) found.push(`${path} (a key)`);
      else visit((node as Record<string, unknown>)[key], () => `${path}.${key}`);
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
