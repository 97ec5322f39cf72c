/** What a run learnt about its data set, stored on the run and handed to later attempts. */
import { z } from 'zod';

/** Per-channel normalisation of pixel values in [0, 1]. */
export const normalizationSchema = z.object({
  mean: z.array(z.number()).min(1).max(3),
  std: z.array(z.number()).min(1).max(3),
});

/** What a run learnt about its data set when it first started (stored as the run's dataInfo). */
export const dataInfoSchema = z.object({
  classes: z.array(z.string()),
  normalization: normalizationSchema,
  trainImages: z.number().int(),
  valImages: z.number().int(),
});
export type DataInfo = z.infer<typeof dataInfoSchema>;
