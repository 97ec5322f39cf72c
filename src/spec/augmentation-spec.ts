/** The paper's augmentation of training images, as a run's spec asks for it (src/data draws it). */
import { z } from 'zod';

export const augmentationSchema = z
  .object({
    /** Random-resized crop instead of the whole image. @defaultValue true */
    crop: z.boolean().default(true),
    /** Horizontal flip with probability 1/2. @defaultValue true */
    flip: z.boolean().default(true),
    /** Brightness, contrast and saturation each scaled by a factor in [1-j, 1+j]. @defaultValue 0.4 */
    jitter: z.number().min(0).max(1).default(0.4),
  })
  .strict();
export type Augmentation = z.output<typeof augmentationSchema>;
