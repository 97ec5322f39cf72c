/** The running epoch's sums as checkpoints carry them, including checkpoints of older code. */
import { describe, expect, it } from 'vitest';
import {
  emptyEpochTotals,
  epochMeans,
  restoreEpochTotals,
} from '../../src/worker/child/epoch-totals.js';

describe('epoch totals', () => {
  it('come back as saved, through JSON', () => {
    const saved = { epochSteps: 4, epochAccuracySum: 2, epochTop5Sum: 3.5, epochMainLossSum: 6 };
    const restored = restoreEpochTotals(JSON.parse(JSON.stringify(saved)));
    expect(restored).toEqual(saved);
    expect(epochMeans(restored)).toEqual({ accuracy: 0.5, top5: 0.875, mainLoss: 1.5 });
  });

  it('leave a sum an older checkpoint lacks unknown for its epoch, not zero', () => {
    // Written before top-5 and the epoch loss were summed, 3 steps into an epoch.
    const restored = restoreEpochTotals({ epochSteps: 3, epochAccuracySum: 1.5 });
    restored.epochSteps += 1;
    restored.epochAccuracySum += 1;
    restored.epochTop5Sum += 1;
    restored.epochMainLossSum += 0.5;
    const means = epochMeans(restored);
    expect(means.accuracy).toBe(0.625);
    // Not 1/4 and 0.5/4, which would read as a collapse of top-5 and of the loss.
    expect(means.top5).toBeNaN();
    expect(means.mainLoss).toBeNaN();
    // The same once it went through a checkpoint (NaN is null in JSON).
    expect(epochMeans(restoreEpochTotals(JSON.parse(JSON.stringify(restored)))).top5).toBeNaN();
  });

  it('start from zero at an epoch boundary, whatever was saved, or with nothing saved', () => {
    expect(restoreEpochTotals({ epochSteps: 0, epochAccuracySum: 0 })).toEqual(emptyEpochTotals());
    expect(restoreEpochTotals(undefined)).toEqual(emptyEpochTotals());
    expect(restoreEpochTotals(null)).toEqual(emptyEpochTotals());
  });
});
