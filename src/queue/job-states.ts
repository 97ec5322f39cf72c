/**
 * BullMQ's job states as this project reads them. A run's job id is its run id, so a job's state
 * says where the run stands in the queue: not taken yet, held by a worker, or ended.
 */

/** States of a job no worker has taken yet (`wait` is BullMQ's older name for `waiting`). */
const WAITING = ['waiting', 'wait', 'prioritized', 'delayed', 'waiting-children'] as const;

/** States in which the run is in the queue's hands: waiting for a worker or held by one. */
export const LIVE_JOB_STATES: ReadonlySet<string> = new Set([...WAITING, 'active']);

/**
 * States in which a job can still be removed before a worker starts it; `unknown` is what
 * BullMQ answers for a job it no longer holds, so there is nothing a worker could be running.
 */
export const NOT_STARTED_JOB_STATES: ReadonlySet<string> = new Set([...WAITING, 'unknown']);

/** The job states `GET /v1/queues` and the `gq_jobs` gauge count. */
export const COUNTED_JOB_STATES = [
  'waiting',
  'prioritized',
  'active',
  'delayed',
  'completed',
  'failed',
] as const;
