/**
 * When a worker counts as alive. The worker refreshes its row's `lastSeenAt` every
 * WORKER_HEARTBEAT_MS; the API lists (and counts for Prometheus) the workers seen within
 * WORKER_ALIVE_MS. Both are defined here so that the window always spans several heartbeats.
 */

/** How often a worker refreshes its row's `lastSeenAt`. */
export const WORKER_HEARTBEAT_MS = 10_000;

/** Heartbeats a worker may miss (a slow database, a long GC pause) and still be listed. */
const MISSED_HEARTBEATS_TOLERATED = 5;

/** A worker not seen for this long is not listed as alive (one minute). */
export const WORKER_ALIVE_MS = WORKER_HEARTBEAT_MS * (MISSED_HEARTBEATS_TOLERATED + 1);

/** The oldest `lastSeenAt` of a worker still alive at `now`. */
export function aliveSince(now: number = Date.now()): Date {
  return new Date(now - WORKER_ALIVE_MS);
}
