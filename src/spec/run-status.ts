/**
 * The words of a run's life: its kinds and statuses, as the API, the events and the database
 * (Prisma's RunKind and RunStatus enums, checked against these in src/runs/) spell them.
 */

/** Every status a run can have; `queued` and `running` are the unfinished ones. */
export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses of a run that is waiting for a worker or held by one. */
export const UNFINISHED_STATUSES = ['queued', 'running'] as const satisfies readonly RunStatus[];

/** Statuses a run never leaves (but for a retry of a failed run). */
export const FINISHED_STATUSES: ReadonlySet<RunStatus> = new Set([
  'succeeded',
  'failed',
  'cancelled',
]);

/** `train` and `eval` runs go through the queue; `external` ones are trained elsewhere. */
export const RUN_KINDS = ['train', 'eval', 'external'] as const;
export type RunKind = (typeof RUN_KINDS)[number];
