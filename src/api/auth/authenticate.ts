/**
 * `Authorization: Bearer <key>` on everything mounted behind it (/v1, /admin): 401 without a
 * live key, 403 when the key lacks the scope the method and path need. The key is left in
 * `res.locals.apiKey` for the rate limiter and handlers.
 */
import type { RequestHandler, Response } from 'express';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import type { ApiKeyStore, AuthenticatedKey } from './api-key-store.js';
import type { FailedAuthLimit } from './failed-auth-limit.js';
import { grants, requiredScope } from './scopes.js';

export function authenticatedKey(res: Response): AuthenticatedKey {
  const key = res.locals['apiKey'] as AuthenticatedKey | undefined;
  if (!key) throw new Error('authenticatedKey() used on a route not behind authenticate()');
  return key;
}

/**
 * Looks the bearer key up; every failure is the same 401 so probing learns nothing. A valid key
 * always passes; with `failures`, an address that presented too many unknown keys gets 429 for
 * its next unknown ones instead of 401.
 */
export function authenticate(store: ApiKeyStore, failures?: FailedAuthLimit): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization');
    const match = header === undefined ? null : /^Bearer +([\x21-\x7e]{1,200}) *$/i.exec(header);
    if (!match) {
      throw new UnauthorizedError(
        header === undefined
          ? 'send an API key as `Authorization: Bearer <key>`'
          : 'the Authorization header is not `Bearer <key>`',
      );
    }
    const key = await store.verify(match[1]!);
    if (!key) {
      await failures?.recordFailure(req.ip ?? req.socket.remoteAddress ?? 'unknown');
      throw new UnauthorizedError('the API key is unknown or revoked');
    }
    res.locals['apiKey'] = key;
    next();
  };
}

/** Refuses (403) a key without the scope this request needs. Runs after authenticate(). */
export function authorize(): RequestHandler {
  return (req, res, next) => {
    const key = authenticatedKey(res);
    const needed = requiredScope(req.method, req.originalUrl.split('?')[0] ?? '');
    if (!grants(key.scopes, needed)) {
      throw new ForbiddenError(
        `this key has scopes [${key.scopes.join(', ')}]; ${req.method} ${req.baseUrl}${req.path} needs '${needed}'`,
      );
    }
    next();
  };
}
