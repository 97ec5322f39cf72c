/**
 * Which of a run's checkpoints to keep: the newest `keepLatest`, and the best `keepBest` by the
 * spec's metric. The run store deletes the rest, rows and bytes.
 */
import type { CheckpointSpec } from '../spec/checkpoint-spec.js';
import { metricIsBetter as better } from '../spec/metric-name.js';

/** For runs without a checkpoint spec, which still checkpoint at graceful shutdown. */
export const SHUTDOWN_ONLY_RETENTION = { keepLatest: 1, keepBest: 0, metric: 'val/accuracy' };

/** Checkpoints to delete under `keepLatest` + `keepBest` (by `metric`) retention. */
export function checkpointsToDelete<T extends { step: number; metrics: unknown }>(
  checkpoints: T[],
  spec: Pick<CheckpointSpec, 'keepLatest' | 'keepBest' | 'metric'>,
): T[] {
  const byStep = [...checkpoints].sort((a, b) => b.step - a.step);
  const keep = new Set(byStep.slice(0, spec.keepLatest));
  const scored = byStep
    .map((c) => ({ c, score: (c.metrics as Record<string, number> | null)?.[spec.metric] }))
    .filter((s): s is { c: T; score: number } => typeof s.score === 'number');
  scored.sort((a, b) =>
    better(spec.metric, a.score, b.score)
      ? -1
      : better(spec.metric, b.score, a.score)
        ? 1
        : b.c.step - a.c.step,
  );
  for (const s of scored.slice(0, spec.keepBest)) keep.add(s.c);
  return byStep.filter((c) => !keep.has(c));
}
