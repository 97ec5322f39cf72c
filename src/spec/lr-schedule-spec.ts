import { z } from 'zod';

/**
 * Learning-rate schedules. `step` defaults to the paper's: "decreasing the learning rate by 4%
 * every 8 epochs" (Szegedy et al. 2015, section 6). Any schedule can start with a linear warm-up.
 */
export const lrScheduleSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('constant'),
      warmupSteps: z.number().int().min(0).max(10_000_000).default(0),
    })
    .strict(),
  z
    .object({
      type: z.literal('step'),
      /** Multiplier applied every `everyEpochs`. @defaultValue 0.96 */
      factor: z.number().positive().max(1).default(0.96),
      /** @defaultValue 8 */
      everyEpochs: z.number().positive().max(10_000).default(8),
      warmupSteps: z.number().int().min(0).max(10_000_000).default(0),
    })
    .strict(),
  z
    .object({
      type: z.literal('cosine'),
      /** Floor reached at the last step. @defaultValue 0 */
      minLearningRate: z.number().min(0).max(10).default(0),
      warmupSteps: z.number().int().min(0).max(10_000_000).default(0),
    })
    .strict(),
]);
export type LrScheduleInput = z.input<typeof lrScheduleSchema>;
export type LrSchedule = z.output<typeof lrScheduleSchema>;
