/**
 * A RunStore that also publishes each change it wrote as a live run event (src/queue/run-events.ts):
 * status changes, progress, metric batches, checkpoints. Events go out after the write
 * succeeded, so a dashboard that reacts by reading the run sees what the event announced. The
 * training processor needs no change: the worker hands it this store instead of the plain one.
 */
import { metricsEvent, type RunEventPublisher } from '../queue/run-events.js';
import type { RunStore } from './run-store.js';

export function withRunEvents(store: RunStore, events: RunEventPublisher): RunStore {
  const status = (runId: string, s: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled') =>
    void events.publish({ type: 'status', runId, status: s });
  return {
    ...store,
    async claim(runId, claimant) {
      const lease = await store.claim(runId, claimant);
      if (lease) status(runId, 'running');
      return lease;
    },
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
    async markSucceeded(lease, result) {
      await store.markSucceeded(lease, result);
      status(lease.runId, 'succeeded');
    },
    async markFailed(lease, error) {
      await store.markFailed(lease, error);
      status(lease.runId, 'failed');
    },
    async markQueued(lease, error) {
      await store.markQueued(lease, error);
      status(lease.runId, 'queued');
    },
    async markCancelled(lease) {
      await store.markCancelled(lease);
      status(lease.runId, 'cancelled');
    },
    async failUnowned(runId, error) {
      const failed = await store.failUnowned(runId, error);
      if (failed) status(runId, 'failed');
      return failed;
    },
  };
}
