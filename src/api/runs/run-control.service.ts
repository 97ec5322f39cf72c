/**
 * Cancelling and retrying runs. The job's state in the queue decides how: a job no worker has
 * taken is removed and its run cancelled at once; a running one is asked to stop through a
 * cancel request its worker polls.
 */
import type { Queue } from 'bullmq';
import type { CancelRequests } from '../../queue/cancel-requests.js';
import { NOT_STARTED_JOB_STATES } from '../../queue/job-states.js';
import { RunConflictError } from '../../runs/run-errors.js';
import type { RunLifecycle } from '../../runs/run-lifecycle.js';
import { FINISHED_STATUSES } from '../../spec/run-status.js';
import type { RunListing } from './run-listing.service.js';

export function createRunControl(deps: {
  queue: Queue;
  cancels: CancelRequests;
  lifecycle: RunLifecycle;
  listing: Pick<RunListing, 'findRun'>;
}) {
  const { queue, cancels, lifecycle, listing } = deps;

  /** Removes the run's job if no worker has started it; true when there is no job left. */
  async function removeUnstartedJob(id: string): Promise<boolean> {
    const job = await queue.getJob(id);
    if (!job) return true;
    if (!NOT_STARTED_JOB_STATES.has(await job.getState())) return false;
    // Fails if a worker took the job meanwhile: then it is cancelled as a running one.
    return job.remove().then(
      () => true,
      () => false,
    );
  }

  return {
    /**
     * Cancels a run. A queued one is removed from the queue and marked cancelled at once
     * (`accepted: false`); a running one is flagged for its worker, which stops it between two
     * steps and marks it cancelled (`accepted: true`).
     */
    async cancelRun(id: string) {
      const run = await listing.findRun(id);
      if (FINISHED_STATUSES.has(run.status)) {
        throw new RunConflictError(
          `run ${id} has already ${run.status === 'cancelled' ? 'been cancelled' : run.status}`,
        );
      }
      // The job's state decides, not the run's: a run left `running` by a worker that died may
      // have its job waiting in the queue again.
      if (await removeUnstartedJob(id)) {
        const cancelled = await lifecycle.cancelUnstarted(id);
        if (cancelled) return { run: cancelled, accepted: false };
      }
      await cancels.request(id);
      return { run: await listing.findRun(id), accepted: true };
    },

    /**
     * Puts a failed run back in the queue: a fresh job (the failed one is removed) that resumes
     * from the run's newest checkpoint with a new set of attempts.
     */
    async retryRun(id: string) {
      const run = await listing.findRun(id);
      if (run.status !== 'failed')
        throw new RunConflictError(`run ${id} is ${run.status}; only failed runs can be retried`);
      const job = await queue.getJob(id);
      if (job) {
        const state = await job.getState();
        if (state !== 'failed' && state !== 'completed')
          throw new RunConflictError(`run ${id} still has a job in the queue (${state})`);
        await job.remove();
      }
      // A cancel asked for while it ran (and that it failed before honouring) must not end
      // the retried run as soon as a worker takes it.
      await cancels.withdraw(id);
      return lifecycle.retry(id);
    },
  };
}
