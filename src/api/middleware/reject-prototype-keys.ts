import type { RequestHandler } from 'express';
import { HttpError, type FieldError } from '../errors.js';

/** Keys that could reach an object's prototype if some code ever merged input into an object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Paths of every forbidden key in a parsed JSON value. Iterative, so deep nesting cannot
 * overflow; array elements are visited by index and only objects are stacked, so a 500,000-
 * element array of numbers costs a loop, not 500,000 path strings.
 */
export function findPrototypeKeys(value: unknown, root: string): string[] {
  const found: string[] = [];
  const stack: Array<[object, string]> = [];
  if (value !== null && typeof value === 'object') stack.push([value, root]);
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const child: unknown = node[i];
        if (child !== null && typeof child === 'object') stack.push([child, `${path}.${i}`]);
      }
      continue;
    }
    for (const key of Object.keys(node)) {
      const child: unknown = (node as Record<string, unknown>)[key];
      if (FORBIDDEN_KEYS.has(key)) found.push(`${path}.${key}`);
      else if (child !== null && typeof child === 'object') stack.push([child, `${path}.${key}`]);
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
