/**
 * The data a training (or eval) child reads, whatever its format: batches by (epoch, batch)
 * position, the validation (or test) images, and the data set's classes and normalisation.
 * Synthetic images are cheap and drawn in the child's thread; file data sets are decoded,
 * resized and augmented by the worker-thread pipeline, requested ahead of use.
 */
import { BatchPipeline } from '../../data/batch-pipeline.js';
import type { DataSplit } from '../../data/idx-source.js';
import { ImageDataset, type BatchRequest } from '../../data/image-dataset.js';
import { NormalizationAccumulator, type Normalization } from '../../data/normalization.js';
import { openImageSource } from '../../data/open-image-source.js';
import { DatasetError } from '../../data/raw-image.js';
import { SyntheticDataset } from '../../data/synthetic-dataset.js';
import { SYNTHETIC_NORMALIZATION, type ImageBatch } from '../../data/synthetic.js';
import type { Augmentation } from '../../spec/augmentation-spec.js';
import type { DataInfo } from '../../spec/data-info.js';
import type { DatasetSpec } from '../../spec/dataset-spec.js';

export interface TrainingData {
  readonly info: DataInfo;
  stepsPerEpoch(batchSize: number): number;
  /** Training batch `batch` of `epoch`, augmented when the run asks for it. */
  trainBatch(epoch: number, batch: number, batchSize: number): Promise<ImageBatch>;
  /** The held-out images (validation, or the whole split for eval) in a fixed order. */
  heldOutBatches(batchSize: number): AsyncGenerator<ImageBatch>;
  close(): Promise<void>;
}

export interface TrainingDataOptions {
  dataset: DatasetSpec;
  shape: { inputSize: number; channels: 1 | 3 };
  dataRoot: string;
  /** Pipeline threads for file data sets. */
  threads: number;
  augment?: Augmentation;
  /** What an earlier attempt (or the evaluated run) recorded: classes and normalisation. */
  stored?: DataInfo;
  /** Eval: every image of the split is held out, none trained on. */
  evaluate?: boolean;
}

/** Images sampled (seeded) to measure a data set's normalisation. */
const NORMALIZATION_SAMPLE = 1000;

export async function openTrainingData(options: TrainingDataOptions): Promise<TrainingData> {
  const { dataset: spec, shape } = options;
  if (spec.format === 'synthetic') {
    const dataset = new SyntheticDataset(
      options.evaluate ? { ...spec, valFraction: 1 } : spec,
      shape,
    );
    return {
      info: {
        classes: Array.from({ length: spec.numClasses }, (_, i) => `class-${i}`),
        normalization: {
          mean: Array(shape.channels).fill(SYNTHETIC_NORMALIZATION.mean),
          std: Array(shape.channels).fill(SYNTHETIC_NORMALIZATION.std),
        },
        trainImages: dataset.trainIndices.length,
        valImages: dataset.valIndices.length,
      },
      stepsPerEpoch: (batchSize) => dataset.stepsPerEpoch(batchSize),
      trainBatch: (epoch, batch, batchSize) =>
        Promise.resolve(dataset.trainBatch(epoch, batch, batchSize)),
      async *heldOutBatches(batchSize) {
        yield* dataset.valBatches(batchSize);
      },
      close: () => Promise.resolve(),
    };
  }

  const split: DataSplit = options.evaluate ? 'test' : spec.split;
  const location = { format: spec.format, path: spec.path };
  const sourceOptions = { dataRoot: options.dataRoot, ...shape };
  const source = await openImageSource(location, split, sourceOptions);
  const classes = options.stored?.classes ?? source.classes;
  // Labels follow the trained run's class order: an eval folder may lack a class, never add one.
  const relabel = source.classes.map((name) => classes.indexOf(name));
  const unknown = source.classes.filter((_, i) => relabel[i] === -1);
  if (unknown.length > 0)
    throw new DatasetError(`classes not known to the trained model: ${unknown.join(', ')}`);
  if (classes.length !== spec.numClasses)
    throw new DatasetError(`${classes.length} classes found, numClasses is ${spec.numClasses}`);
  const dataset = new ImageDataset(
    source,
    { seed: spec.seed, valFraction: options.evaluate ? 1 : spec.valFraction },
    shape,
  );
  const pipeline = new BatchPipeline({ location, split, source: sourceOptions }, options.threads);
  const render = async (
    request: BatchRequest,
    normalization: Normalization,
    augmentation?: Augmentation,
  ): Promise<ImageBatch> => {
    const batch = await pipeline.render(request, normalization, augmentation);
    for (let i = 0; i < batch.count; i++)
      batch.labels[i] = relabel[batch.labels[i] as number] as number;
    return batch;
  };

  let normalization = options.stored?.normalization;
  if (!normalization) {
    const accumulator = new NormalizationAccumulator(shape.channels);
    const identity = { mean: Array(shape.channels).fill(0), std: Array(shape.channels).fill(1) };
    // An eval of a run that stored none (trained before runs kept it) measures its own images.
    const pool = dataset.trainIndices.length > 0 ? dataset.trainIndices : dataset.valIndices;
    const sample = pool.slice(0, NORMALIZATION_SAMPLE);
    await Promise.all(
      dataset.valRequests(64, sample).map(async (request) => {
        accumulator.add((await render(request, identity)).images);
      }),
    );
    normalization = accumulator.result();
  }
  const norm = normalization;
  return {
    info: {
      classes,
      normalization: norm,
      trainImages: dataset.trainIndices.length,
      valImages: dataset.valIndices.length,
    },
    stepsPerEpoch: (batchSize) => dataset.stepsPerEpoch(batchSize),
    trainBatch: (epoch, batch, batchSize) =>
      render(
        dataset.trainRequest(epoch, batch, batchSize, options.augment !== undefined),
        norm,
        options.augment,
      ),
    async *heldOutBatches(batchSize) {
      const requests = dataset.valRequests(batchSize);
      // Two batches ahead: the threads decode while the network evaluates.
      const ahead = (request: BatchRequest): Promise<ImageBatch> => {
        const batch = render(request, norm);
        batch.catch(() => undefined); // a consumer that stops early leaves some untaken
        return batch;
      };
      const inFlight = requests.slice(0, 2).map(ahead);
      for (let i = 0; i < requests.length; i++) {
        const next = requests[i + 2];
        if (next) inFlight.push(ahead(next));
        yield await (inFlight[i] as Promise<ImageBatch>);
      }
    },
    close: () => pipeline.close(),
  };
}
