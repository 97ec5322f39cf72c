/**
 * A file data set as a run sees it: a stable, seeded validation hold-out of the training split,
 * batches in an order shuffled by (seed, epoch) — any (epoch, batch) position can be produced
 * again without replaying the ones before it, which exact resume needs — and images rendered to
 * the network's input size, channels and normalisation, augmented when asked.
 */
import { mixSeed } from '../spec/seed.js';
import { drawTransform, IDENTITY_TRANSFORM } from './augmentation.js';
import type { Augmentation } from '../spec/augmentation-spec.js';
import { transformImage } from './image-transform.js';
import { NormalizationAccumulator, type Normalization } from './normalization.js';
import { seededPermutation } from './permutation.js';
import type { ImageSource } from './raw-image.js';
import type { ImageBatch } from './synthetic.js';

export interface SplitOptions {
  seed: number;
  /** Share of the split held out for validation (0 for evaluation). */
  valFraction: number;
}

/** Which images a batch holds and how each is drawn. */
export interface BatchRequest {
  indices: number[];
  /** One seed per image when augmenting; none for plain images. */
  augmentSeeds?: number[];
}

export class ImageDataset {
  readonly trainIndices: Int32Array;
  readonly valIndices: Int32Array;

  constructor(
    readonly source: ImageSource,
    readonly split: SplitOptions,
    readonly shape: { inputSize: number; channels: 1 | 3 },
  ) {
    const all = seededPermutation(source.labels.length, mixSeed(split.seed, 0x5a11));
    const valCount = Math.floor(source.labels.length * split.valFraction);
    this.valIndices = all.slice(0, valCount);
    this.trainIndices = all.slice(valCount);
  }

  /** Full batches per epoch; the incomplete last batch is dropped so every step has one shape. */
  stepsPerEpoch(batchSize: number): number {
    return Math.floor(this.trainIndices.length / batchSize);
  }

  private epochOrder: { epoch: number; order: Int32Array } | undefined;

  /** Training batch `batch` of `epoch` (0-based): which images, and their augmentation seeds. */
  trainRequest(epoch: number, batch: number, batchSize: number, augment: boolean): BatchRequest {
    if (this.epochOrder?.epoch !== epoch) {
      const seed = mixSeed(this.split.seed, epoch, 0x7a1);
      this.epochOrder = { epoch, order: seededPermutation(this.trainIndices.length, seed) };
    }
    const positions = Array.from(
      { length: batchSize },
      (_, k) => (batch * batchSize + k) as number,
    );
    const order = this.epochOrder.order;
    return {
      indices: positions.map((p) => this.trainIndices[order[p] as number] as number),
      ...(augment
        ? { augmentSeeds: positions.map((p) => mixSeed(this.split.seed, epoch, p, 0xa06)) }
        : {}),
    };
  }

  /** The validation images in batches of at most `batchSize`, in a fixed order. */
  valRequests(batchSize: number, indices: Int32Array = this.valIndices): BatchRequest[] {
    const requests: BatchRequest[] = [];
    for (let start = 0; start < indices.length; start += batchSize) {
      requests.push({ indices: Array.from(indices.subarray(start, start + batchSize)) });
    }
    return requests;
  }

  /** Renders a batch: NHWC values, normalised. */
  async render(
    request: BatchRequest,
    normalization: Normalization,
    augmentation?: Augmentation,
  ): Promise<ImageBatch> {
    const { inputSize: s, channels: c } = this.shape;
    const pixels = s * s * c;
    const images = new Float32Array(request.indices.length * pixels);
    const labels = new Int32Array(request.indices.length);
    await Promise.all(
      request.indices.map(async (index, k) => {
        const raw = await this.source.read(index);
        const seed = request.augmentSeeds?.[k];
        const transform =
          augmentation && seed !== undefined
            ? drawTransform(augmentation, seed, raw.width, raw.height)
            : IDENTITY_TRANSFORM;
        transformImage(raw, s, c, transform, images, k * pixels, normalization);
        labels[k] = this.source.labels[index] as number;
      }),
    );
    return { images, labels, count: request.indices.length };
  }

  /** Mean and std per channel over up to `sample` training images (a seeded choice). */
  async computeNormalization(sample = 1000): Promise<Normalization> {
    const { inputSize: s, channels: c } = this.shape;
    const picked = seededPermutation(this.trainIndices.length, mixSeed(this.split.seed, 0x40a))
      .slice(0, sample)
      .map((i) => this.trainIndices[i] as number);
    const accumulator = new NormalizationAccumulator(c);
    const values = new Float32Array(s * s * c);
    for (const index of picked) {
      transformImage(await this.source.read(index), s, c, IDENTITY_TRANSFORM, values, 0);
      accumulator.add(values);
    }
    return accumulator.result();
  }
}
