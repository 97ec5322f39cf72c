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

export interface ScheduleContext {
  baseLearningRate: number;
  stepsPerEpoch: number;
  /** Total optimisation steps of the run (cosine decays to its floor there). */
  totalSteps: number;
}

/** Learning rate for the update with 0-based index `step`. Pure: resume gets the same value. */
export function learningRateAt(schedule: LrSchedule, step: number, ctx: ScheduleContext): number {
  const base = ctx.baseLearningRate;
  if (step < schedule.warmupSteps) return (base * (step + 1)) / schedule.warmupSteps;
  switch (schedule.type) {
    case 'constant':
      return base;
    case 'step': {
      const epoch = step / ctx.stepsPerEpoch;
      return base * schedule.factor ** Math.floor(epoch / schedule.everyEpochs);
    }
    case 'cosine': {
      const span = Math.max(1, ctx.totalSteps - schedule.warmupSteps - 1);
      const progress = Math.min(1, (step - schedule.warmupSteps) / span);
      const min = schedule.minLearningRate;
      return min + (base - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
  }
}
