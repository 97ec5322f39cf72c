/** The data set part of a run's spec: synthetic, or files under DATA_ROOT. */
import { z } from 'zod';
import { seedSchema } from './seed.js';
import { dataPathProblem } from './data-path-problem.js';

export const syntheticDatasetSchema = z
  .object({
    format: z.literal('synthetic'),
    numClasses: z.number().int().min(2).max(1000),
    /** Images in the set, before the validation split. */
    size: z.number().int().min(2).max(1_000_000),
    seed: seedSchema,
    /** Share of the set held out for validation. @defaultValue 0.1 */
    valFraction: z.number().min(0).max(0.5).default(0.1),
  })
  .strict();

/** A data set in files under DATA_ROOT (see src/data). */
export const fileDatasetSchema = z
  .object({
    format: z.enum(['idx', 'cifar10', 'imagefolder']),
    /** Relative to DATA_ROOT; never leaves it. */
    path: z
      .string()
      .min(1)
      .max(1024)
      .superRefine((value, ctx) => {
        const problem = dataPathProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    numClasses: z.number().int().min(2).max(1000),
    /** `train` (training runs) or `test` (the held-out files, for eval runs). @defaultValue 'train' */
    split: z.enum(['train', 'test']).default('train'),
    /** Share of the split held out (seeded, stable) for validation. @defaultValue 0.1 */
    valFraction: z.number().min(0).max(0.5).default(0.1),
    /** Seeds the validation hold-out. @defaultValue 0 */
    seed: seedSchema.default(0),
  })
  .strict();
export type FileDatasetSpec = z.output<typeof fileDatasetSchema>;

export const datasetSpecSchema = z.discriminatedUnion('format', [
  syntheticDatasetSchema,
  fileDatasetSchema,
]);
export type DatasetSpec = z.output<typeof datasetSpecSchema>;
