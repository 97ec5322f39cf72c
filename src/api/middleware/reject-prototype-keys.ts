import type { RequestHandler } from 'express';
import { HttpError, type FieldError } from '../errors.js';

/** Keys that could reach an object's prototype if some code ever merged input into an object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Paths of every forbidden key in a parsed JSON value (iterative: deep nesting cannot overflow). */
export function findPrototypeKeys(value: unknown, root: string): string[] {
  const found: string[] = [];
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    for (const key of Object.keys(node)) {
      const child = `${path}.${key}`;
      if (FORBIDDEN_KEYS.has(key)) found.push(child);
      else stack.push([(node as Record<string, unknown>)[key], child]);
    }
  }
  return found;
}

/**
 * 400 for a body or query holding `__proto__`, `constructor` or `prototype` keys. Strict schemas
 * would refuse most of them anyway; this refuses them everywhere, before any handler runs.
 */
export function rejectPrototypeKeys(): RequestHandler {
  return (req, _res, next) => {
    const paths = [
      ...findPrototypeKeys(req.body, 'body'),
      ...findPrototypeKeys(req.query, 'query'),
    ];
    if (paths.length > 0) {
      const errors: FieldError[] = paths.map((path) => ({
        path,
        message: 'keys named __proto__, constructor or prototype are not accepted',
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
