/** Metric names as runs, checkpoints and the API name them, and which way each is better. */
import { z } from 'zod';

/**
 * A metric name (`train/loss`, `val/top5`): letters, digits and `_ . / -`, no `..`, so a name
 * is safe wherever it ends up (a label, a file name in an export).
 */
export const metricNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_./-]+$/, 'letters, digits and _ . / - only')
  .refine((name) => !name.split('/').includes('..'), 'no `..` segments');

/** Whether score `a` beats `b` on `metric`: lower is better for losses, higher for the rest. */
export function metricIsBetter(metric: string, a: number, b: number): boolean {
  return metric.endsWith('loss') ? a < b : a > b;
}
