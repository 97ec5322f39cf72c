/**
 * `Authorization: Bearer <key>` on everything mounted behind it (/v1, /admin): 401 without a
 * live key, 403 when the key lacks the scope the method and path need. The key is left in
 * `res.locals.apiKey` for the rate limiter and handlers.
 */
import type { RequestHandler, Response } from 'express';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { hashApiKey, type ApiKeyStore, type AuthenticatedKey } from './api-key-store.js';
import type { FailedAuthLimit } from './failed-auth-limit.js';
import { grants, requiredScope } from './scopes.js';

export function authenticatedKey(res: Response): AuthenticatedKey {
  const key = res.locals['apiKey'] as AuthenticatedKey | undefined;
  if (!key) throw new Error('authenticatedKey() used on a route not behind authenticate()');
  return key;
}

/**
 * Looks the bearer key up; every failure is the same 401 so probing learns nothing. With
 * `failures`, an address that presented too many unknown keys gets 429 before any lookup
 * (unless its key verified lately).
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
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const keyHash = hashApiKey(match[1]!);
    await failures?.check(address, keyHash);
    const key = await store.verify(match[1]!);
    if (!key) {
      await failures?.recordFailure(address);
      throw new UnauthorizedError('the API key is unknown or revoked');
    }
    failures?.recordSuccess(keyHash);
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
