/** What a finished run returns: its job's return value, stored as the run's `result`. */
import { z } from 'zod';

/** What a finished training job returns (also stored as the run's `result`). */
export const trainResultSchema = z.object({
  steps: z.number().int(),
  epochs: z.number().int(),
  finalLoss: z.number(),
  valAccuracy: z.number().nullable(),
  valTop5: z.number().nullable(),
  imagesPerSec: z.number(),
  backend: z.string(),
});
export type TrainResult = z.infer<typeof trainResultSchema>;

/** What a finished eval job returns (the run's `result`). */
export const evalResultSchema = z.object({
  top1: z.number(),
  top5: z.number(),
  loss: z.number(),
  count: z.number().int(),
  perClass: z.array(
    z.object({
      label: z.string(),
      precision: z.number().nullable(),
      recall: z.number().nullable(),
      count: z.number().int(),
    }),
  ),
  /** Rows: true class; columns: predicted class. */
  confusionMatrix: z.array(z.array(z.number().int())),
  backend: z.string(),
});
export type EvalResult = z.infer<typeof evalResultSchema>;
