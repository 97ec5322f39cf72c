/**
 * A training run's spec: what the API accepts (before the defaults), stores on the run and
 * carries in the run's job, with the cross-field rules both ends check.
 */
import { z } from 'zod';
import { lrScheduleSchema } from './lr-schedule-spec.js';
import { optimizerConfigSchema } from './optimizer-config.js';
import { seedSchema } from './seed.js';
import { augmentationSchema } from './augmentation-spec.js';
import { checkpointSpecSchema } from './checkpoint-spec.js';
import { datasetSpecSchema, type DatasetSpec } from './dataset-spec.js';
import { modelSpecSchema } from './model-spec.js';

export const trainSpecSchema = z
  .object({
    epochs: z.number().int().min(1).max(10_000),
    batchSize: z.number().int().min(1).max(4096),
    optimizer: optimizerConfigSchema,
    lrSchedule: lrScheduleSchema.optional(),
    seed: seedSchema.default(0),
    /** Stop after this many steps even if epochs remain. */
    maxSteps: z.number().int().min(1).max(100_000_000).optional(),
    /** The paper's augmentation of training images (file data sets); off when absent. */
    augment: augmentationSchema.optional(),
  })
  .strict();

/** The fields of a training run's spec, before the cross-field checks. */
export const trainRunSpecFields = {
  model: modelSpecSchema,
  dataset: datasetSpecSchema,
  train: trainSpecSchema,
  checkpoint: checkpointSpecSchema.optional(),
};

type SpecForChecks = {
  model: z.output<typeof modelSpecSchema>;
  dataset: DatasetSpec;
  train: z.output<typeof trainSpecSchema>;
};

/** Cross-field rules of a training spec (shared by the API body and the job payload). */
export function checkTrainRunSpec(spec: SpecForChecks, ctx: z.RefinementCtx): void {
  if (spec.dataset.numClasses !== spec.model.numClasses) {
    ctx.addIssue({
      code: 'custom',
      path: ['dataset', 'numClasses'],
      message: `must equal model.numClasses (${spec.model.numClasses})`,
    });
  }
  if (spec.dataset.format !== 'synthetic') {
    // File data sets are counted at submission (the API reads them) and when the run starts.
    if (spec.dataset.split !== 'train')
      ctx.addIssue({
        code: 'custom',
        path: ['dataset', 'split'],
        message: 'training runs read the train split',
      });
    return;
  }
  const trainImages = spec.dataset.size - Math.floor(spec.dataset.size * spec.dataset.valFraction);
  if (trainImages < spec.train.batchSize) {
    ctx.addIssue({
      code: 'custom',
      path: ['train', 'batchSize'],
      message: `must not exceed the training split (${trainImages} images)`,
    });
  }
}

/** Everything a training run needs, as stored on the run and carried by its job. */
export const trainRunSpecSchema = z
  .object(trainRunSpecFields)
  .strict()
  .superRefine(checkTrainRunSpec);

export type TrainRunSpec = z.output<typeof trainRunSpecSchema>;
export type TrainRunSpecInput = z.input<typeof trainRunSpecSchema>;
