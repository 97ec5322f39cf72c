/**
 * Optimizer settings as configs and API bodies carry them. Kept apart from optimizer.ts so the
 * API and the config parser can validate them without loading TensorFlow.js.
 */
import { z } from 'zod';

export const optimizerConfigSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('sgd'),
      learningRate: z.number().positive().max(10),
      /** @defaultValue 0.9 (the paper) */
      momentum: z.number().min(0).max(0.999).default(0.9),
      /** @defaultValue false */
      nesterov: z.boolean().default(false),
      /** L2 penalty on kernels (not biases or norm parameters), as Caffe's decay_mult. @defaultValue 0 */
      weightDecay: z.number().min(0).max(1).default(0),
    })
    .strict(),
  z
    .object({
      type: z.literal('adam'),
      learningRate: z.number().positive().max(10),
      beta1: z.number().min(0).max(0.9999).default(0.9),
      beta2: z.number().min(0).max(0.99999).default(0.999),
      epsilon: z.number().positive().max(1).default(1e-8),
      weightDecay: z.number().min(0).max(1).default(0),
    })
    .strict(),
]);
export type OptimizerConfigInput = z.input<typeof optimizerConfigSchema>;
export type OptimizerConfig = z.output<typeof optimizerConfigSchema>;
