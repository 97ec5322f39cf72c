/**
 * The dead-letter view: failed runs, newest first, each with its error and what the queue still
 * knows of its job (attempts made, BullMQ's failure reason).
 */
import type { Queue } from 'bullmq';
import type { RunListing } from './run-listing.service.js';

export function createDeadLetters(deps: { queue: Queue; listing: Pick<RunListing, 'listRuns'> }) {
  return {
    async listDeadLetters(query: { limit: number; cursor?: string }) {
      const page = await deps.listing.listRuns({ ...query, status: 'failed' });
      const items = await Promise.all(
        page.items.map(async (run) => {
          const job = await deps.queue.getJob(run.id);
          return {
            ...run,
            job: job
              ? {
                  state: await job.getState(),
                  attemptsMade: job.attemptsMade,
                  failedReason: job.failedReason ?? null,
                }
              : null,
          };
        }),
      );
      return { items, nextCursor: page.nextCursor };
    },
  };
}
