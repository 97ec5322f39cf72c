import type { LrSchedule } from '../spec/lr-schedule-spec.js';

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
