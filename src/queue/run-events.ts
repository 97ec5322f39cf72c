/**
 * Live events of runs, carried by Redis pub/sub so that whichever process causes an event (a
 * worker on any host, an API replica ingesting an external run's points) reaches whichever API
 * replica holds the browser's event stream. One channel per run, `<prefix>:run-events:<id>`,
 * and one for all runs, `<prefix>:run-events`, which carries every event except metric batches
 * (status, progress, checkpoints: what a runs list shows), so a list never pays for the points.
 *
 * Events say what changed, they are not the record: a subscriber that misses one (a reconnect)
 * reads the run again. Metric events carry the points when a batch is small and only a summary
 * per series when it is large, so a 10,000-point ingest does not become a 10,000-point message.
 */
import type { Redis } from 'ioredis';
import type { RunStatus } from '../spec/run-status.js';

/** Points a metrics event carries before it carries only the summary of each series. */
export const MAX_EVENT_POINTS = 500;

export type RunEvent =
  | {
      type: 'status';
      runId: string;
      status: RunStatus;
    }
  | { type: 'progress'; runId: string; step: number; totalSteps: number; epoch: number }
  | {
      type: 'metrics';
      runId: string;
      series: Array<{
        name: string;
        /** Steps covered by the batch, and the newest point. */
        fromStep: number;
        toStep: number;
        count: number;
        last: { step: number; value: number };
        /** The points themselves, when the batch is small (MAX_EVENT_POINTS in all). */
        points?: Array<{ step: number; value: number }>;
      }>;
    }
  | { type: 'checkpoint'; runId: string; step: number; epoch: number };

export function runEventChannel(prefix: string, runId: string): string {
  return `${prefix}:run-events:${runId}`;
}

/** The channel of every run's status, progress and checkpoint events. */
export function allRunsEventChannel(prefix: string): string {
  return `${prefix}:run-events`;
}

/** Whether an event also goes to the all-runs channel: everything but metric batches. */
export function concernsRunsList(event: RunEvent): boolean {
  return event.type !== 'metrics';
}

/** The metrics event of a batch of points, grouped by series in step order. */
export function metricsEvent(
  runId: string,
  points: ReadonlyArray<{ name: string; step: number; value: number }>,
): RunEvent {
  const byName = new Map<string, Array<{ step: number; value: number }>>();
  for (const p of points) {
    let list = byName.get(p.name);
    if (!list) byName.set(p.name, (list = []));
    list.push({ step: p.step, value: p.value });
  }
  const withPoints = points.length <= MAX_EVENT_POINTS;
  return {
    type: 'metrics',
    runId,
    series: [...byName].map(([name, list]) => {
      list.sort((a, b) => a.step - b.step);
      const last = list[list.length - 1]!;
      return {
        name,
        fromStep: list[0]!.step,
        toStep: last.step,
        count: list.length,
        last,
        ...(withPoints ? { points: list } : {}),
      };
    }),
  };
}

export interface RunEventPublisher {
  /** Publishes without throwing: live events must never fail the write they describe. */
  publish(event: RunEvent): Promise<void>;
}

export function createRunEventPublisher(
  redis: Redis,
  prefix: string,
  onError: (error: unknown) => void = () => undefined,
): RunEventPublisher {
  return {
    async publish(event) {
      const message = JSON.stringify(event);
      try {
        if (!concernsRunsList(event)) {
          await redis.publish(runEventChannel(prefix, event.runId), message);
          return;
        }
        // Both in one round trip; exec() reports a failed command in its result, not by throwing.
        const results = await redis
          .pipeline()
          .publish(runEventChannel(prefix, event.runId), message)
          .publish(allRunsEventChannel(prefix), message)
          .exec();
        const failed = results?.find(([error]) => error)?.[0];
        if (failed) throw failed;
      } catch (error) {
        onError(error);
      }
    },
  };
}
