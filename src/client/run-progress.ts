/** One line that says where a run is: a progress bar, step and epoch, latest metrics. */
import type { RunResponse } from './api-client.js';

const BAR_WIDTH = 24;

/** Metrics shown by `watch`, in this order, when the run has them. */
const SHOWN_METRICS = [
  'train/loss',
  'train/accuracy',
  'val/loss',
  'val/accuracy',
  'train/images_per_sec',
];

export function progressBar(fraction: number, width = BAR_WIDTH): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(clamped * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(clamped * 100).toFixed(0).padStart(3)}%`;
}

function formatValue(value: number): string {
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

export function progressLine(run: RunResponse): string {
  const progress = run.progress;
  const done = run.status === 'succeeded';
  const fraction = done ? 1 : progress ? progress.step / Math.max(1, progress.totalSteps) : 0;
  const where = progress
    ? `step ${progress.step}/${progress.totalSteps} epoch ${progress.epoch + 1}`
    : '';
  const metrics = SHOWN_METRICS.filter((name) => run.latestMetrics?.[name] !== undefined)
    .map((name) => `${name}=${formatValue(run.latestMetrics![name]!.value)}`)
    .join(' ');
  return [progressBar(fraction), run.status.padEnd(9), where, metrics].filter(Boolean).join('  ');
}
