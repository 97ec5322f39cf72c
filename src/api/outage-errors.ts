/**
 * The HTTP face of a dependency outage: an error that says Redis or PostgreSQL cannot be reached
 * becomes `503 Service Unavailable` with `Retry-After`, naming what is down, rather than a bare
 * 500. Nothing was done, so the client may simply try again. Recognised here, in one place, by
 * what the drivers throw:
 *
 * - PostgreSQL (Prisma over node-postgres): the connection error codes Prisma gives the driver's
 *   socket errors (P1001 unreachable, P1002/P1008 timed out, P1017 connection closed), a pool that
 *   timed out (P2024) or is refused connections (P2037), an initialisation error, and SQLSTATE
 *   classes 08 (connection exception) and 57P0x (server shutting down or starting up) passed
 *   through from the server.
 * - Redis (ioredis, also under BullMQ): a command refused because the connection is down (no
 *   offline queue), a closed connection, or retries exhausted while reconnecting.
 */
import { Prisma } from '../db/index.js';

/** What a 503 for an outage tells clients to wait before trying again. */
export const OUTAGE_RETRY_AFTER_SECONDS = 5;

const POSTGRES_OUTAGE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);
/** SQLSTATEs of a server that is going away or not yet there. */
const POSTGRES_OUTAGE_SQLSTATE = /^(08|57P0[1-3])/;

const REDIS_OUTAGE_MESSAGES = [
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Connection is closed.',
];

/**
 * Thrown by the API's own code when a dependency did not answer in time (an event stream's
 * Redis subscription); its message says what was waited for.
 */
export class DependencyUnavailableError extends Error {
  override name = 'DependencyUnavailableError';
}

function isPostgresOutage(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientInitializationError) return true;
  if (!(error instanceof Prisma.PrismaClientKnownRequestError)) return false;
  if (POSTGRES_OUTAGE_CODES.has(error.code)) return true;
  const cause = (error.meta?.['driverAdapterError'] as { cause?: Record<string, unknown> })?.cause;
  const sqlState = cause?.['originalCode'] ?? cause?.['code'];
  return typeof sqlState === 'string' && POSTGRES_OUTAGE_SQLSTATE.test(sqlState);
}

function isRedisOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === 'MaxRetriesPerRequestError' || REDIS_OUTAGE_MESSAGES.includes(error.message)
  );
}

/**
 * What is down, in words for a client (`PostgreSQL (the database) is unreachable`), when `error`
 * means a dependency outage; undefined for any other error.
 */
export function describeOutage(error: unknown): string | undefined {
  if (error instanceof DependencyUnavailableError) return error.message;
  if (isPostgresOutage(error)) return 'PostgreSQL (the database) is unreachable';
  if (isRedisOutage(error)) return 'Redis (the queue) is unreachable';
  return undefined;
}
