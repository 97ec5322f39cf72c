/**
 * The data a training (or eval) child reads, whatever its format: batches by (epoch, batch)
 * position, the validation (or test) images, and the data set's classes and normalisation.
 * Synthetic images are cheap and drawn in the child's thread; file data sets are decoded,
 * resized and augmented by the worker-thread pipeline, requested ahead of use.
 */
import { BatchPipeline } from '../../data/batch-pipeline.js';
import type { DataLimits } from '../../data/data-limits.js';
import type { DataSplit } from '../../data/idx-source.js';
import { ImageDataset, type BatchRequest } from '../../data/image-dataset.js';
import { NormalizationAccumulator, type Normalization } from '../../data/normalization.js';
import { openImageSource } from '../../data/open-image-source.js';
import { DatasetError } from '../../data/raw-image.js';
import { SyntheticDataset } from '../../data/synthetic-dataset.js';
import { SYNTHETIC_NORMALIZATION, type ImageBatch } from '../../data/synthetic.js';
import type { Augmentation } from '../../spec/augmentation-spec.js';
import type { DataInfo } from '../../spec/data-info.js';
import type { DatasetSpec, FileDatasetSpec } from '../../spec/dataset-spec.js';

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
  /** DATA_MAX_BYTES and DATA_MAX_IMAGES (required for file data sets). */
  limits?: DataLimits;
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

/**
 * Opens the data set of `options.dataset` for a training or eval child. Close it when done: a
 * file data set holds the pipeline's worker threads.
 */
export async function openTrainingData(options: TrainingDataOptions): Promise<TrainingData> {
  const { dataset: spec } = options;
  return spec.format === 'synthetic'
    ? openSyntheticData(spec, options)
    : openFileData(spec, options);
}

/** Synthetic images, drawn in the child's thread; their classes and normalisation are fixed. */
function openSyntheticData(
  spec: Extract<DatasetSpec, { format: 'synthetic' }>,
  options: TrainingDataOptions,
): TrainingData {
  const { shape } = options;
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

/** Renders one batch request with the given normalisation (and augmentation, if any). */
type RenderBatch = (
  request: BatchRequest,
  normalization: Normalization,
  augmentation?: Augmentation,
) => Promise<ImageBatch>;

/** A file data set, decoded, resized and augmented by the worker-thread pipeline. */
async function openFileData(
  spec: FileDatasetSpec,
  options: TrainingDataOptions,
): Promise<TrainingData> {
  const { shape } = options;
  const split: DataSplit = options.evaluate ? 'test' : spec.split;
  const location = { format: spec.format, path: spec.path };
  if (!options.limits) throw new Error('a file data set is read within data limits; none given');
  const sourceOptions = { dataRoot: options.dataRoot, limits: options.limits, ...shape };
  const source = await openImageSource(location, split, sourceOptions);
  const { classes, relabel } = matchClasses(
    source.classes,
    options.stored?.classes,
    spec.numClasses,
  );
  const dataset = new ImageDataset(
    source,
    { seed: spec.seed, valFraction: options.evaluate ? 1 : spec.valFraction },
    shape,
  );
  const pipeline = new BatchPipeline({ location, split, source: sourceOptions }, options.threads);
  const render: RenderBatch = async (request, normalization, augmentation) => {
    const batch = await pipeline.render(request, normalization, augmentation);
    for (let i = 0; i < batch.count; i++)
      batch.labels[i] = relabel[batch.labels[i] as number] as number;
    return batch;
  };
  const norm =
    options.stored?.normalization ?? (await measureNormalization(dataset, render, shape.channels));
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
      yield* readAhead(dataset.valRequests(batchSize), (request) => render(request, norm));
    },
    close: () => pipeline.close(),
  };
}

/**
 * The class list the labels follow, and the map from the source's class indices into it.
 * Labels follow the trained run's class order (`stored`): an eval folder may lack a class, never
 * add one.
 */
function matchClasses(
  sourceClasses: string[],
  stored: string[] | undefined,
  numClasses: number,
): { classes: string[]; relabel: number[] } {
  const classes = stored ?? sourceClasses;
  const relabel = sourceClasses.map((name) => classes.indexOf(name));
  const unknown = sourceClasses.filter((_, i) => relabel[i] === -1);
  if (unknown.length > 0)
    throw new DatasetError(`classes not known to the trained model: ${unknown.join(', ')}`);
  if (classes.length !== numClasses)
    throw new DatasetError(`${classes.length} classes found, numClasses is ${numClasses}`);
  return { classes, relabel };
}

/** Measures per-channel mean and std over a seeded sample of the data set's images. */
async function measureNormalization(
  dataset: ImageDataset,
  render: RenderBatch,
  channels: number,
): Promise<Normalization> {
  const accumulator = new NormalizationAccumulator(channels);
  const identity = { mean: Array(channels).fill(0), std: Array(channels).fill(1) };
  // An eval of a run that stored none (trained before runs kept it) measures its own images.
  const pool = dataset.trainIndices.length > 0 ? dataset.trainIndices : dataset.valIndices;
  const sample = pool.slice(0, NORMALIZATION_SAMPLE);
  await Promise.all(
    dataset.valRequests(64, sample).map(async (request) => {
      accumulator.add((await render(request, identity)).images);
    }),
  );
  return accumulator.result();
}

/**
 * Yields the rendered `requests` in order, two batches ahead: the threads decode while the
 * network evaluates.
 */
async function* readAhead(
  requests: BatchRequest[],
  render: (request: BatchRequest) => Promise<ImageBatch>,
): AsyncGenerator<ImageBatch> {
  const ahead = (request: BatchRequest): Promise<ImageBatch> => {
    const batch = render(request);
    batch.catch(() => undefined); // a consumer that stops early leaves some untaken
    return batch;
  };
  const inFlight = requests.slice(0, 2).map(ahead);
  for (let i = 0; i < requests.length; i++) {
    const next = requests[i + 2];
    if (next) inFlight.push(ahead(next));
    yield await (inFlight[i] as Promise<ImageBatch>);
  }
}
