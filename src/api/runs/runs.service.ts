/**
 * The runs resource's use cases, gathered for the routers: submit (queued or external), finish,
 * cancel and retry, the dead letters, and reading runs. Each lives in its own file; every status
 * change goes through the run lifecycle (src/runs/), which also publishes its event.
 */
import type { Queue } from 'bullmq';
import type { Config } from '../../config.js';
import type { PrismaClient } from '../../db/index.js';
import type { CancelRequests } from '../../queue/cancel-requests.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../queue/enqueue-run.js';
import type { RunEventPublisher } from '../../queue/run-events.js';
import { createRunLifecycle } from '../../runs/run-lifecycle.js';
import { createDeadLetters } from './dead-letters.service.js';
import { createExternalRuns } from './external-runs.service.js';
import type { Submitted } from './idempotent-create.js';
import { createRunControl } from './run-control.service.js';
import { createRunListing } from './run-listing.service.js';
import { createRunSubmission } from './run-submission.service.js';
import type { CreateRunBody } from './runs.schemas.js';

export { BEST_METRIC, runView } from './run-presenter.js';

export interface RunsServiceDeps {
  prisma: PrismaClient;
  queue: Queue;
  cancels: CancelRequests;
  /** Retries of a training job for transient faults (JOB_ATTEMPTS, JOB_BACKOFF_MS). */
  retry?: RetryPolicy;
  /** Live events (status changes) for the dashboards following a run. */
  events: RunEventPublisher;
  /** DATA_ROOT: submissions' data sets are checked below it, within the data limits; the job memory budget. */
  config: Pick<
    Config,
    | 'DATA_ROOT'
    | 'DATA_MAX_BYTES'
    | 'DATA_MAX_IMAGES'
    | 'JOB_MEMORY_CAP_BYTES'
    | 'DATA_PREFETCH_BATCHES'
  >;
}

export function createRunsService(deps: RunsServiceDeps) {
  const { prisma, queue, cancels, events, config } = deps;
  const lifecycle = createRunLifecycle({
    prisma,
    events,
    queue,
    retry: deps.retry ?? DEFAULT_RETRY_POLICY,
  });
  const listing = createRunListing(prisma);
  const submission = createRunSubmission({ prisma, lifecycle, config });
  const external = createExternalRuns({ prisma, lifecycle, listing });
  return {
    ...listing,
    ...submission,
    ...external,
    ...createRunControl({ queue, cancels, lifecycle, listing }),
    ...createDeadLetters({ queue, listing }),
    /** A training or eval run (queued) or an external one (running at once, never queued). */
    submitRun(body: CreateRunBody, idempotencyKey?: string): Promise<Submitted> {
      return body.kind === 'external'
        ? external.submitExternalRun(body, idempotencyKey)
        : submission.submitQueuedRun(body, idempotencyKey);
    },
  };
}

export type RunsService = ReturnType<typeof createRunsService>;
