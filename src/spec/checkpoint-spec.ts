/** How often a training run checkpoints and which checkpoints it keeps. */
import { z } from 'zod';
import { metricNameSchema } from './metric-name.js';

export const checkpointSpecSchema = z
  .object({
    everySteps: z.number().int().min(1).max(10_000_000),
    keepLatest: z.number().int().min(1).max(1000).default(3),
    /** Also keep this many best checkpoints by `metric`. @defaultValue 0 */
    keepBest: z.number().int().min(0).max(1000).default(0),
    /** Metric for keepBest; higher is better unless it ends in `loss`. @defaultValue 'val/accuracy' */
    metric: metricNameSchema.default('val/accuracy'),
  })
  .strict();

export type CheckpointSpec = z.output<typeof checkpointSpecSchema>;
