/**
 * A limit on failed API key lookups per client address, counted in Redis so every API replica
 * sees the same count (rate-limiter-flexible, as the per-key limit).
 *
 * Keys have 256 random bits, so guessing one is hopeless; what the limit protects is Postgres:
 * every unknown key costs a lookup. An address that presented AUTH_FAILURE_MAX unknown or
 * revoked keys within AUTH_FAILURE_WINDOW_SECONDS gets 429 with `Retry-After` for the rest of the
 * window, before any lookup, unless it sends a key this replica verified within the window: so
 * users who share an address (an office, a proxy) with a broken or hostile client keep working.
 * Requests without a key cost no lookup and
 * are not counted. The address is Express's `req.ip`: behind a proxy, set TRUST_PROXY, or every
 * client shares the proxy's address (and its limit).
 */
import { isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
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
  /** Throws 429 while `address` is over its limit, unless `keyHash` was verified lately. */
  check(address: string, keyHash: string): Promise<void>;
  /** Counts a failed lookup from `address`. */
  recordFailure(address: string): Promise<void>;
  /** Remembers a key that verified, so it passes a blocked address for a window. */
  recordSuccess(keyHash: string): void;
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

/** Keys remembered as verified, per replica: enough for every user, bounded against floods. */
const MAX_REMEMBERED_KEYS = 10_000;

export function createFailedAuthLimit(options: FailedAuthLimitOptions): FailedAuthLimit {
  if (options.max === 0)
    return { check: async () => undefined, recordFailure: async () => {}, recordSuccess: () => {} };
  const windowMs = options.windowSeconds * 1000;
  /** Key hash → when it last verified (insertion order = age, for eviction). */
  const verified = new Map<string, number>();
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
    async check(address, keyHash) {
      const lastVerified = verified.get(keyHash);
      if (lastVerified !== undefined && Date.now() - lastVerified < windowMs) return;
      let state;
      try {
        state = await limiter.get(addressKey(address));
      } catch (error) {
        options.logger.error(
          { err: error },
          'failed-authentication limit unavailable; let through',
        );
        return;
      }
      if (!state || state.consumedPoints < options.max) return;
      const retryAfter = Math.max(1, Math.ceil(state.msBeforeNext / 1000));
      throw new HttpError(
        429,
        'Too Many Requests',
        `too many unknown API keys from this address (${options.max} per ${options.windowSeconds} s); retry in ${retryAfter} s`,
        [],
        { 'Retry-After': String(retryAfter) },
      );
    },
    recordSuccess(keyHash) {
      verified.delete(keyHash);
      verified.set(keyHash, Date.now());
      if (verified.size > MAX_REMEMBERED_KEYS) verified.delete(verified.keys().next().value!);
    },
    async recordFailure(address) {
      // consume() rejects once the address is over the limit, which is what check() reports.
      await limiter.consume(addressKey(address)).catch(() => undefined);
    },
  };
}
