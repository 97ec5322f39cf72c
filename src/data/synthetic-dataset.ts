/**
 * The generated data set as a training run sees it: a stable, seeded validation split, and
 * training batches in an order shuffled by (seed, epoch) — so any (epoch, batch) position can be
 * produced again without replaying the ones before it (resume needs exactly that).
 */
import { mixSeed } from '../spec/seed.js';
import { seededPermutation as permutation } from './permutation.js';
import { renderSyntheticImage, type ImageBatch } from './synthetic.js';

export interface SyntheticDatasetSpec {
  numClasses: number;
  /** Images before the split. */
  size: number;
  seed: number;
  /** Share held out for validation. */
  valFraction: number;
}

export interface ImageShape {
  inputSize: number;
  channels: 1 | 3;
}

export class SyntheticDataset {
  readonly trainIndices: Int32Array;
  readonly valIndices: Int32Array;

  constructor(
    readonly spec: SyntheticDatasetSpec,
    readonly shape: ImageShape,
  ) {
    const all = permutation(spec.size, mixSeed(spec.seed, 0x5a11));
    const valCount = Math.floor(spec.size * spec.valFraction);
    this.valIndices = all.slice(0, valCount);
    this.trainIndices = all.slice(valCount);
  }

  /** Full batches per epoch; the incomplete last batch is dropped so every step has one shape. */
  stepsPerEpoch(batchSize: number): number {
    return Math.floor(this.trainIndices.length / batchSize);
  }

  private epochOrder: { epoch: number; order: Int32Array } | undefined;

  /** Training batch `batch` of `epoch` (0-based), shuffled by (seed, epoch). */
  trainBatch(epoch: number, batch: number, batchSize: number): ImageBatch {
    if (this.epochOrder?.epoch !== epoch) {
      const seed = mixSeed(this.spec.seed, epoch, 0x7a1);
      this.epochOrder = { epoch, order: permutation(this.trainIndices.length, seed) };
    }
    const order = this.epochOrder.order;
    const picked = Array.from(
      order.subarray(batch * batchSize, (batch + 1) * batchSize),
      (i) => this.trainIndices[i] as number,
    );
    return this.render(picked);
  }

  /** The validation set in batches of at most `batchSize`, in a fixed order. */
  *valBatches(batchSize: number): Generator<ImageBatch> {
    for (let start = 0; start < this.valIndices.length; start += batchSize) {
      yield this.render(Array.from(this.valIndices.subarray(start, start + batchSize)));
    }
  }

  private render(indices: number[]): ImageBatch {
    const { inputSize, channels } = this.shape;
    const pixels = inputSize * inputSize * channels;
    const images = new Float32Array(indices.length * pixels);
    const labels = new Int32Array(indices.length);
    const spec = { ...this.spec, inputSize, channels };
    indices.forEach((index, k) => {
      labels[k] = renderSyntheticImage(spec, index, images, k * pixels);
    });
    return { images, labels, count: indices.length };
  }
}
