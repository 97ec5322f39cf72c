/**
 * A limit on failed API key lookups per client address, counted in Redis so every API replica,
 * and a replica after a restart, sees the same count (rate-limiter-flexible, as the per-key limit).
 *
 * A presented key is always looked up first: a valid key passes whatever its address did, on
 * every replica, however new the key (users who share an address, an office or a proxy, with a
 * broken or hostile client keep working). Only unknown or revoked keys are counted: once an
 * address presented AUTH_FAILURE_MAX of them within AUTH_FAILURE_WINDOW_SECONDS, its unknown keys
 * get 429 with `Retry-After` for the rest of the window instead of 401. Keys have 256 random bits,
 * so guessing one is hopeless anyway; the limit slows a guesser down and tells a broken client
 * to stop. It does not spare Postgres the lookup (an indexed read of one row, as every request
 * costs). Requests without a key cost no lookup and are not counted. The address is Express's
 * `req.ip`: behind a proxy, set TRUST_PROXY, or every client shares the proxy's address (and its
 * limit).
 */
import { isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Logger } from '../../logger.js';
import { HttpError } from '../errors.js';

export interface FailedAuthLimitOptions {
  redis: Redis;
  /** Redis key prefix, shared by the replicas of one deployment. */
  keyPrefix: string;
  /** Failed lookups per window per address; 0 turns the limit off. */
  max: number;
  windowSeconds: number;
  logger: Logger;
}

export interface FailedAuthLimit {
  /**
   * Counts an unknown or revoked key presented by `address`; throws 429 once the address is over
   * its limit (the caller answers 401 otherwise).
   */
  recordFailure(address: string): Promise<void>;
}

/**
 * The unit an address is counted in: an IPv4 address as it is, an IPv6 address by its /64 (one
 * host usually holds a whole /64, so counting single addresses would let it rotate through
 * 2^64 of them).
 */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, ''); // no zone index
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain);
  if (mapped) return mapped[1]!;
  if (!isIPv6(plain)) return plain;
  const [head = '', tail] = plain.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [
    ...headGroups,
    ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'),
    ...tailGroups,
  ];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export function createFailedAuthLimit(options: FailedAuthLimitOptions): FailedAuthLimit {
  if (options.max === 0) return { recordFailure: async () => undefined };
  const limiter = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: `${options.keyPrefix}:authfail`,
    points: options.max,
    duration: options.windowSeconds,
    rejectIfRedisNotReady: true,
    // While Redis is away each replica counts on its own rather than not at all.
    insuranceLimiter: new RateLimiterMemory({
      points: options.max,
      duration: options.windowSeconds,
    }),
  });
  return {
    async recordFailure(address) {
      try {
        await limiter.consume(addressKey(address));
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) {
          options.logger.error(
            { err: rejection },
            'failed-authentication limit unavailable; not counted',
          );
          return;
        }
        const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        throw new HttpError(
          429,
          'Too Many Requests',
          `too many unknown API keys from this address (AUTH_FAILURE_MAX: ${options.max} per ${options.windowSeconds} s); retry in ${retryAfter} s`,
          [],
          { 'Retry-After': String(retryAfter) },
        );
      }
    },
  };
}
