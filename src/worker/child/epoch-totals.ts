/**
 * Sums over the steps of the running epoch, for its mean training figures (train/accuracy,
 * train/top5, train/epoch_loss). They travel in each checkpoint's `data`, so a run resumed in
 * mid-epoch reports the figures an uninterrupted run does.
 *
 * Checkpoints written before a sum existed carry only `epochSteps` and `epochAccuracySum`. A sum
 * such a checkpoint lacks is unknown for the rest of its epoch (NaN, so that epoch's figure is
 * not written rather than written wrong: the missing steps would weigh as zeros), and known again
 * from the next epoch on.
 */
export interface EpochTotals {
  epochSteps: number;
  epochAccuracySum: number;
  epochTop5Sum: number;
  /** Main-head cross-entropy: comparable with val/loss (train/loss adds the aux heads). */
  epochMainLossSum: number;
}

export function emptyEpochTotals(): EpochTotals {
  return { epochSteps: 0, epochAccuracySum: 0, epochTop5Sum: 0, epochMainLossSum: 0 };
}

/** The totals a checkpoint's `data` carries (any older shape, or none). */
export function restoreEpochTotals(data: unknown): EpochTotals {
  const saved = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const steps = typeof saved['epochSteps'] === 'number' ? saved['epochSteps'] : 0;
  // With no step of the epoch taken, every sum is 0 whatever was (not) saved.
  const sum = (name: keyof EpochTotals): number => {
    const value = saved[name];
    if (typeof value === 'number') return value;
    return steps === 0 ? 0 : Number.NaN;
  };
  return {
    epochSteps: steps,
    epochAccuracySum: sum('epochAccuracySum'),
    epochTop5Sum: sum('epochTop5Sum'),
    epochMainLossSum: sum('epochMainLossSum'),
  };
}

/** The epoch's mean figures; NaN for a sum that is unknown (see above). */
export function epochMeans(totals: EpochTotals): {
  accuracy: number;
  top5: number;
  mainLoss: number;
} {
  const steps = Math.max(totals.epochSteps, 1);
  return {
    accuracy: totals.epochAccuracySum / steps,
    top5: totals.epochTop5Sum / steps,
    mainLoss: totals.epochMainLossSum / steps,
  };
}
