/**
 * Per-channel input normalisation, `(v - mean) / std` on pixel values in [0, 1]. Computed once
 * per data set from its training images and stored with the run, so evaluation, later runs and
 * exported models feed the network exactly what it was trained on.
 */
export interface Normalization {
  mean: number[];
  std: number[];
}

/** Running per-channel sums over HWC values in [0, 1]. */
export class NormalizationAccumulator {
  private readonly sum: Float64Array;
  private readonly squares: Float64Array;
  private count = 0;

  constructor(private readonly channels: number) {
    this.sum = new Float64Array(channels);
    this.squares = new Float64Array(channels);
  }

  add(values: Float32Array): void {
    const c = this.channels;
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      this.sum[i % c] = (this.sum[i % c] as number) + v;
      this.squares[i % c] = (this.squares[i % c] as number) + v * v;
    }
    this.count += values.length / c;
  }

  result(): Normalization {
    const mean = Array.from(this.sum, (s) => s / Math.max(this.count, 1));
    const std = Array.from(this.squares, (q, ch) => {
      const m = mean[ch] as number;
      // A blank data set still gets a usable divisor.
      return Math.max(Math.sqrt(Math.max(q / Math.max(this.count, 1) - m * m, 0)), 1e-3);
    });
    return { mean, std };
  }
}
