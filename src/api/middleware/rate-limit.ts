import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { HttpError } from '../errors.js';
import { authenticatedKey } from '../auth/authenticate.js';
import type { Logger } from '../../logger.js';

export interface RateLimitOptions {
  redis: Redis;
  /** Redis key prefix; API replicas of one deployment share it, and so share the counts. */
  keyPrefix: string;
  /** Requests per window per API key; 0 turns limiting off. */
  max: number;
  windowSeconds: number;
  logger: Logger;
}

/**
 * Fixed-window request limits per API key, counted in Redis so every API replica sees the same
 * count (rate-limiter-flexible: one atomic Lua call per request). While Redis is unreachable each
 * replica falls back to counting in memory rather than refusing everyone or limiting no one.
 * Runs after authenticate(): 429 with `Retry-After` (seconds) and `RateLimit-*` headers.
 */
export function rateLimitPerKey(options: RateLimitOptions): RequestHandler {
  if (options.max === 0) return (_req, _res, next) => next();
  const limiter = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: `${options.keyPrefix}:ratelimit`,
    points: options.max,
    duration: options.windowSeconds,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({
      points: options.max,
      duration: options.windowSeconds,
    }),
  });
  return async (_req, res, next) => {
    const key = authenticatedKey(res);
    let result: RateLimiterRes;
    try {
      result = await limiter.consume(key.id);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) {
        options.logger.error({ err: rejection }, 'rate limiter failed; request let through');
        next();
        return;
      }
      const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      throw new HttpError(
        429,
        'Too Many Requests',
        `this key may make ${options.max} requests per ${options.windowSeconds} s; retry in ${retryAfter} s`,
        [],
        {
          'Retry-After': String(retryAfter),
          'RateLimit-Limit': String(options.max),
          'RateLimit-Remaining': '0',
          'RateLimit-Reset': String(retryAfter),
        },
      );
    }
    res.set({
      'RateLimit-Limit': String(options.max),
      'RateLimit-Remaining': String(result.remainingPoints),
      'RateLimit-Reset': String(Math.max(1, Math.ceil(result.msBeforeNext / 1000))),
    });
    next();
  };
}
