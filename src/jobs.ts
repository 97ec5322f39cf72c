/**
 * The contract between API and worker: queue name, job payload and result schemas.
 * Nothing is enqueued untyped: the API builds payloads with these schemas and the worker parses
 * them again before it trusts them.
 */
import { z } from 'zod';
import { lrScheduleSchema } from './model/lr-schedule.js';
import { optimizerConfigSchema } from './model/optimizer-config.js';
import { seedSchema } from './model/seed.js';
import { googLeNetConfigSchema } from './model/googlenet-config.js';
import { augmentationSchema } from './data/augmentation.js';
import { dataPathProblem } from './data/data-path.js';

/** BullMQ queue that carries training (and later evaluation) jobs. */
export const TRAINING_QUEUE = 'training';

/** GoogLeNet's config (src/model) as submitted: an `arch` tag, the input size required. */
export const modelSpecSchema = googLeNetConfigSchema
  .omit({ seed: true })
  .extend({ arch: z.literal('googlenet'), inputSize: z.number().int().min(32).max(512) })
  .strict();

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

/** Whether score `a` beats `b` on `metric`: lower is better for losses, higher for the rest. */
export function metricIsBetter(metric: string, a: number, b: number): boolean {
  return metric.endsWith('loss') ? a < b : a > b;
}

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

/** Payload of a training job. The job id is the run id. */
export const trainJobSchema = z.object({
  runId: z.string().uuid(),
  spec: trainRunSpecSchema,
});
export type TrainJob = z.infer<typeof trainJobSchema>;

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

/** Which checkpoint an eval run reads, as submitted. */
export const checkpointRefSchema = z.union([
  z
    .object({
      runId: z.string().uuid(),
      which: z
        .string()
        .regex(/^(latest|best|step:\d{1,9})$/, 'latest, best or step:N')
        .default('latest'),
    })
    .strict(),
  z.object({ checkpointId: z.string().uuid() }).strict(),
]);

/** Everything an eval run needs, as stored on the run and carried by its job. */
export const evalRunSpecSchema = z
  .object({
    /** The checkpoint as resolved at submission. */
    checkpoint: z.object({
      runId: z.string().uuid(),
      checkpointId: z.string().uuid(),
      step: z.number().int(),
      location: z.string(),
    }),
    /** The trained run's model and seed, to rebuild its network. */
    model: modelSpecSchema,
    seed: seedSchema,
    dataset: datasetSpecSchema,
    batchSize: z.number().int().min(1).max(4096),
    /** The trained run's classes and normalisation (absent for synthetic data). */
    dataInfo: dataInfoSchema.optional(),
  })
  .strict();
export type EvalRunSpec = z.output<typeof evalRunSpecSchema>;

/** Payload of an eval job (job name `eval`). The job id is the run id. */
export const evalJobSchema = z.object({
  runId: z.string().uuid(),
  spec: evalRunSpecSchema,
});
export type EvalJob = z.infer<typeof evalJobSchema>;

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
