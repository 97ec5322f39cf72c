/**
 * Where a run's checkpoints live in the artifact store: `runs/<runId>/step-<n>`, one key prefix
 * per checkpoint, its files below it. Built and read back only here.
 */

/** The key prefix under which all of a run's checkpoints are stored. */
export function runCheckpointsPrefix(runId: string): string {
  return `runs/${runId}`;
}

/** A checkpoint's location (its key prefix, also its Checkpoint row's `location`). */
export function checkpointLocation(runId: string, step: number): string {
  return `${runCheckpointsPrefix(runId)}/step-${step}`;
}

/** The checkpoint location a stored file's key lies under, or undefined for any other key. */
export function checkpointLocationOfKey(key: string): string | undefined {
  const match = /^(runs\/[^/]+\/step-\d+)(?:\/|$)/.exec(key);
  return match?.[1];
}
