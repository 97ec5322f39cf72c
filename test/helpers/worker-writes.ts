import type { Queue } from 'bullmq';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.js';
import type { PrismaClient } from '../../src/db/index.js';
import { DEFAULT_RETRY_POLICY } from '../../src/queue/enqueue-run.js';
import type { RunEventPublisher } from '../../src/queue/run-events.js';
import { createRunLifecycle } from '../../src/runs/run-lifecycle.js';
import { withRunEvents } from '../../src/worker/publishing-run-store.js';
import { createRunStore } from '../../src/worker/run-store.js';
import { recordedEvents } from './recorded-events.js';

/**
 * What a worker writes a run through, as src/worker/main.ts builds it: the run store (with its
 * live events) and the run lifecycle, both announcing to `events` (kept in memory by default).
 */
export function workerWrites(
  prisma: PrismaClient,
  artifacts: Pick<ArtifactStore, 'delete'>,
  queue: Queue,
  events: RunEventPublisher = recordedEvents(),
) {
  return {
    store: withRunEvents(createRunStore(prisma, artifacts), events),
    lifecycle: createRunLifecycle({ prisma, events, queue, retry: DEFAULT_RETRY_POLICY }),
  };
}
