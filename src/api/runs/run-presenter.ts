/**
 * How a run looks to API clients: the row's fields as JSON, with what the list and a single
 * run add from the metric rollups.
 */
import type { Run } from '../../db/index.js';

/** The newest point of one series. */
export interface LatestMetric {
  name: string;
  step: number;
  value: number;
}

/** What the list and a single run add to the row: read from the metric rollups. */
export interface RunViewExtras {
  latestMetrics?: LatestMetric[];
  /** The highest `val/accuracy` so far; null when the run has none. */
  bestValAccuracy?: number | null;
}

/** The metric the runs list ranks runs by ("best val accuracy"). */
export const BEST_METRIC = 'val/accuracy';

/**
 * The run as a list shows it (`runListItem`): everything but its `config`, which can be up to
 * 64 KiB (an external run's) and which only the run's own page needs (`GET /v1/runs/:id`).
 */
export function runListItem(run: Run, { latestMetrics, bestValAccuracy }: RunViewExtras = {}) {
  return {
    id: run.id,
    kind: run.kind,
    status: run.status,
    name: run.name,
    priority: run.priority,
    progress: run.progress,
    attempts: run.attempts,
    resumedFromStep: run.resumedFromStep,
    backend: run.backend,
    device: run.device,
    workerId: run.workerId,
    heartbeatAt: run.heartbeatAt?.toISOString() ?? null,
    error: run.error,
    result: run.result,
    dataInfo: (run.dataInfo as Record<string, unknown> | null) ?? null,
    createdAt: run.createdAt.toISOString(),
    startedAt: run.startedAt?.toISOString() ?? null,
    finishedAt: run.finishedAt?.toISOString() ?? null,
    ...(latestMetrics
      ? {
          latestMetrics: Object.fromEntries(
            latestMetrics.map((m) => [m.name, { step: m.step, value: m.value }]),
          ),
        }
      : {}),
    ...(bestValAccuracy !== undefined ? { bestValAccuracy } : {}),
  };
}

/** The run as the API answers with it (`runResponse`): the list's view and its config. */
export function runView(run: Run, extras: RunViewExtras = {}) {
  return { ...runListItem(run, extras), config: run.config };
}
