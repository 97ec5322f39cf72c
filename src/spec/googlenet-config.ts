import { z } from 'zod';
import { seedSchema } from './seed.js';

/** Normalisation after each convolution: none (the paper), batch norm (torchvision) or the paper's LRN after the stem. */
export const normSchema = z.enum(['none', 'batchnorm', 'lrn']);
export type Norm = z.infer<typeof normSchema>;

/**
 * Everything that decides GoogLeNet's graph. Parsed with zod so a bad value fails with a
 * message naming the field (the worker passes user-submitted configs straight through).
 */
export const googLeNetConfigSchema = z
  .object({
    /** Number of output classes. */
    numClasses: z.number().int().min(2).max(100_000),
    /** Square input side in pixels. @defaultValue 224 */
    inputSize: z.number().int().min(32).max(512).default(224),
    /** 1 (grayscale) or 3 (RGB). @defaultValue 3 */
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    /** Channel multiplier applied to every layer width; 0.25 gives the quarter-width test network. @defaultValue 1 */
    width: z.number().min(0.0625).max(4).default(1),
    /** Build the two auxiliary classifiers (training only). @defaultValue true */
    auxLogits: z.boolean().default(true),
    /** @defaultValue 'none' */
    norm: normSchema.default('none'),
    /** Seed for weight initialisation; same seed, same initial weights. @defaultValue 0 */
    seed: seedSchema.default(0),
  })
  .strict();

export type GoogLeNetConfigInput = z.input<typeof googLeNetConfigSchema>;
export type GoogLeNetConfig = z.output<typeof googLeNetConfigSchema>;

/** Parses a config, throwing a ZodError that names the bad field. */
export function parseGoogLeNetConfig(input: GoogLeNetConfigInput): GoogLeNetConfig {
  return googLeNetConfigSchema.parse(input);
}
