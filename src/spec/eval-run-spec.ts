/** An eval run's spec: the checkpoint as asked for, and as resolved at submission. */
import { z } from 'zod';
import { seedSchema } from './seed.js';
import { dataInfoSchema } from './data-info.js';
import { datasetSpecSchema } from './dataset-spec.js';
import { modelSpecSchema } from './model-spec.js';

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
