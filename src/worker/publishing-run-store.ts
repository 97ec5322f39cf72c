/**
 * A RunStore that also publishes each change it wrote as a live run event
 * (src/queue/run-events.ts): progress, metric batches, checkpoints. Events go out after the
 * write succeeded, so a dashboard that reacts by reading the run sees what the event announced.
 * Status events are not here: the run lifecycle (src/runs/) publishes those with every status
 * write. The training processor needs no change: the worker hands it this store instead of the
 * plain one.
 */
import { metricsEvent, type RunEventPublisher } from '../queue/run-events.js';
import type { RunStore } from './run-store.js';

export function withRunEvents(store: RunStore, events: RunEventPublisher): RunStore {
  return {
    ...store,
    async updateProgress(lease, progress) {
      await store.updateProgress(lease, progress);
      void events.publish({ type: 'progress', runId: lease.runId, ...progress });
    },
    async writeMetrics(lease, points) {
      const inserted = await store.writeMetrics(lease, points);
      if (inserted > 0) void events.publish(metricsEvent(lease.runId, points));
      return inserted;
    },
    async recordCheckpoint(lease, c) {
      await store.recordCheckpoint(lease, c);
      void events.publish({ type: 'checkpoint', runId: lease.runId, step: c.step, epoch: c.epoch });
    },
  };
}
