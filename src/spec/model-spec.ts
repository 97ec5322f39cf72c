/** The model part of a run's spec, as submitted and as carried by its job. */
import { z } from 'zod';
import { googLeNetConfigSchema } from './googlenet-config.js';

/** GoogLeNet's config (src/model) as submitted: an `arch` tag, the input size required. */
export const modelSpecSchema = googLeNetConfigSchema
  .omit({ seed: true })
  .extend({ arch: z.literal('googlenet'), inputSize: z.number().int().min(32).max(512) })
  .strict();
