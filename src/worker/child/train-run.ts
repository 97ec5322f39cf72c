/**
 * One training run, start to finish: build GoogLeNet, train on its data set epoch by
 * epoch, report metrics and progress, validate each epoch, checkpoint every N steps and at the
 * end. Runs inside the training child process; everything it learns leaves through `emit`.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Prefetcher } from '../../data/prefetcher.js';
import type { ImageBatch } from '../../data/synthetic.js';
import type { TrainResult } from '../../spec/run-results.js';
import { loadBackend, type LoadedBackend } from '../../model/backend.js';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../../checkpoints/checkpoint.js';
import { createGoogLeNet, predictLogits } from '../../model/googlenet.js';
import { createTrainer } from '../../model/train-step.js';
import { summedCrossEntropy } from '../../model/summed-cross-entropy.js';
import { topKHits } from '../../model/top-k-hits.js';
import { emptyEpochTotals, epochMeans, restoreEpochTotals } from './epoch-totals.js';
import type { ChildMessage, MetricPointMessage, StartMessage } from '../ipc.js';
import { openTrainingData, type TrainingData } from './training-data.js';
import { nonFiniteWeight } from '../../model/non-finite-weight.js';
import { DivergedError, UnrecoverableRunError } from '../../spec/unrecoverable-run-error.js';

/** Metric points are sent to the parent at most this often (and at every epoch end). */
const METRIC_FLUSH_MS = 500;

export interface RunControls {
  /** Set by the parent's stop message; checked between steps. */
  stopRequested(): 'cancel' | 'shutdown' | undefined;
}

function tensorsOf(
  batch: ImageBatch,
  inputSize: number,
  channels: number,
): { images: tf.Tensor4D; labels: tf.Tensor1D } {
  return {
    images: tf.tensor4d(batch.images, [batch.count, inputSize, inputSize, channels]),
    labels: tf.tensor1d(batch.labels, 'int32'),
  };
}

/**
 * Lets queued events run (IPC stop requests, the parent's disconnect). Training steps are long
 * synchronous calls; without this the child would hear nothing until the run ends.
 */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * What the training process costs the machine, in MB: its resident memory, the memory its
 * tensors hold, and GPU memory when the backend reports it (WebGL-style backends do; the native
 * CUDA backend does not).
 */
function systemMetrics(): Record<string, number> {
  const memory = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
  return {
    'system/rss_mb': process.memoryUsage().rss / 2 ** 20,
    'system/tensor_mb': memory.numBytes / 2 ** 20,
    ...(memory.numBytesInGPU !== undefined
      ? { 'system/gpu_mb': memory.numBytesInGPU / 2 ** 20 }
      : {}),
  };
}

/** Mean main-head loss, top-1 and top-5 accuracy over the validation set. */
async function validate(
  model: ReturnType<typeof createGoogLeNet>,
  data: TrainingData,
  shape: { inputSize: number; channels: number },
  batchSize: number,
  numClasses: number,
): Promise<{ loss: number; accuracy: number; top5: number } | null> {
  let count = 0;
  let loss = 0;
  let top1 = 0;
  let top5 = 0;
  const k = Math.min(5, numClasses);
  for await (const batch of data.heldOutBatches(batchSize)) {
    await yieldToEvents();
    const [l, a1, a5] = tf.tidy(() => {
      const { images, labels } = tensorsOf(batch, shape.inputSize, shape.channels);
      const logits = predictLogits(model, images);
      const ce = summedCrossEntropy(logits, labels, numClasses);
      const hit1 = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
      const hit5 = topKHits(logits, labels, k);
      return [ce.dataSync()[0] ?? 0, hit1.dataSync()[0] ?? 0, hit5.dataSync()[0] ?? 0];
    });
    count += batch.count;
    loss += l;
    top1 += a1;
    top5 += a5;
  }
  if (count === 0) return null;
  return { loss: loss / count, accuracy: top1 / count, top5: top5 / count };
}

/** Trains `start.job` to the end (or until stopped), emitting progress, metrics and checkpoints. */
export async function runTraining(
  start: StartMessage,
  emit: (message: ChildMessage) => void,
  controls: RunControls,
): Promise<void> {
  const run = await TrainingRun.open(start, emit);
  await run.train(controls);
}

/** The last validation, with the step it ran at. */
interface Validation {
  step: number;
  loss: number;
  accuracy: number;
  top5: number;
}

/** One run's model, data and loop position, from its setup to its result. */
class TrainingRun {
  private pending: MetricPointMessage[] = [];
  private lastFlush = Date.now();
  /** The latest train loss; checkpoints record it with their weights. */
  private trainLoss = Number.NaN;
  private lastVal: Validation | undefined;
  private step = 0;
  /**
   * The running epoch's training sums, carried through checkpoints so a mid-epoch resume reports
   * the same epoch figures as an uninterrupted run.
   */
  private epochTotals = emptyEpochTotals();
  private lastCheckpoint = -1;

  private constructor(
    private readonly start: StartMessage,
    private readonly emit: (message: ChildMessage) => void,
    private readonly backend: LoadedBackend,
    private readonly data: TrainingData,
    private readonly stepsPerEpoch: number,
    private readonly totalSteps: number,
    private readonly model: ReturnType<typeof createGoogLeNet>,
    private readonly trainer: ReturnType<typeof createTrainer>,
  ) {}

  /** Loads the backend and the data set, and builds the model and its trainer. */
  static async open(start: StartMessage, emit: (message: ChildMessage) => void) {
    const { model: modelSpec, dataset: dataSpec, train } = start.job.spec;
    const backend = await loadBackend({
      backend: start.backend,
      ...(start.threads !== undefined ? { threads: start.threads } : {}),
    });
    emit({ type: 'backend', backend });
    // File data sets are decoded in the pipeline's threads; they end with this process (the
    // child exits after every run), so no path needs to close them.
    const data = await openTrainingData({
      dataset: dataSpec,
      shape: { inputSize: modelSpec.inputSize, channels: modelSpec.channels },
      dataRoot: start.dataRoot ?? '',
      ...(start.dataLimits ? { limits: start.dataLimits } : {}),
      threads: start.dataThreads ?? 1,
      ...(train.augment ? { augment: train.augment } : {}),
      ...(start.dataInfo ? { stored: start.dataInfo } : {}),
    });
    if (!start.dataInfo) emit({ type: 'data-info', info: data.info });
    const stepsPerEpoch = data.stepsPerEpoch(train.batchSize);
    if (stepsPerEpoch === 0) {
      throw new UnrecoverableRunError(
        `the training split (${data.info.trainImages} images) is smaller than one batch (${train.batchSize})`,
      );
    }
    const totalSteps = Math.min(
      train.maxSteps ?? Number.POSITIVE_INFINITY,
      train.epochs * stepsPerEpoch,
    );
    const model = createGoogLeNet({
      numClasses: modelSpec.numClasses,
      inputSize: modelSpec.inputSize,
      channels: modelSpec.channels,
      width: modelSpec.width,
      auxLogits: modelSpec.auxLogits,
      norm: modelSpec.norm,
      seed: train.seed,
    });
    const trainer = createTrainer({
      model,
      optimizer: train.optimizer,
      ...(train.lrSchedule ? { schedule: train.lrSchedule } : {}),
      stepsPerEpoch,
      totalSteps,
      seed: train.seed,
    });
    return new TrainingRun(start, emit, backend, data, stepsPerEpoch, totalSteps, model, trainer);
  }

  private get spec() {
    return this.start.job.spec;
  }

  private flush(): void {
    if (this.pending.length > 0) this.emit({ type: 'metrics', points: this.pending });
    this.pending = [];
    this.lastFlush = Date.now();
  }

  private point(name: string, step: number, value: number): void {
    if (Number.isFinite(value)) this.pending.push({ name, step, value, time: Date.now() });
  }

  /**
   * The metrics measured on exactly the weights at `step`: the latest train loss, and
   * validation only when it ran at that step (keepBest must not credit a checkpoint with an
   * earlier epoch's score).
   */
  private metricsAt(step: number): Record<string, number> {
    const { trainLoss, lastVal } = this;
    return {
      ...(Number.isFinite(trainLoss) ? { 'train/loss': trainLoss } : {}),
      ...(lastVal && lastVal.step === step
        ? { 'val/loss': lastVal.loss, 'val/accuracy': lastVal.accuracy, 'val/top5': lastVal.top5 }
        : {}),
    };
  }

  private async saveAt(step: number, epoch: number): Promise<void> {
    // A checkpoint of NaN weights would only pass the divergence on to the next attempt.
    const bad = nonFiniteWeight(this.model);
    if (bad) throw new DivergedError(step, `weight ${bad.name}`, bad.value);
    const dir = path.join(this.start.artifactDir, `step-${step}`);
    // A directory for this step can only be left by an earlier attempt that went past our
    // resume point (and whose checkpoint was torn or rejected): this run recomputed the step.
    await rm(dir, { recursive: true, force: true });
    const metrics = this.metricsAt(step);
    const saved = await saveCheckpoint(dir, {
      model: this.model,
      optimizer: this.trainer.optimizer.getState(),
      state: { step, epoch, seed: this.spec.train.seed, metrics, data: { ...this.epochTotals } },
    });
    const { files, bytes, sha256 } = saved;
    this.emit({ type: 'checkpoint', step, epoch, location: dir, files, bytes, sha256, metrics });
    this.lastCheckpoint = step;
  }

  /**
   * Weights, optimizer state and step from the newest checkpoint that loads; the data order and
   * dropout masks follow from (seed, epoch, step), so the run continues exactly.
   */
  private async resume(): Promise<void> {
    const { emit } = this;
    for (const location of this.start.resumeFrom ?? []) {
      try {
        const loaded = await loadCheckpoint(location, this.model);
        this.trainer.restore(loaded.state.step, loaded.optimizer);
        tf.dispose([...loaded.optimizer.slots.values()]);
        const step = (this.step = loaded.state.step);
        const saved = loaded.state.metrics ?? {};
        if (saved['train/loss'] !== undefined) this.trainLoss = saved['train/loss'];
        if (saved['val/accuracy'] !== undefined) {
          this.lastVal = {
            step,
            loss: saved['val/loss'] ?? Number.NaN,
            accuracy: saved['val/accuracy'],
            top5: saved['val/top5'] ?? Number.NaN,
          };
        }
        this.epochTotals = restoreEpochTotals(loaded.state.data);
        this.lastCheckpoint = step;
        emit({ type: 'resumed', step, location });
        break;
      } catch (error) {
        if (!(error instanceof CheckpointError)) throw error;
        emit({ type: 'checkpoint-rejected', location, reason: error.message });
      }
    }
    if ((this.start.resumeFrom ?? []).length > 0 && this.step === 0) emit({ type: 'fresh-start' });
  }

  /** Trains from the resume point to the end, or until a stop is requested. */
  async train(controls: RunControls): Promise<void> {
    await this.resume();
    const { stepsPerEpoch, totalSteps } = this;
    const { train } = this.spec;
    const resumedAt = this.step;
    let epoch = Math.floor(this.step / stepsPerEpoch);
    let firstBatch = this.step % stepsPerEpoch;
    let stopped: 'cancel' | 'shutdown' | undefined;
    const started = performance.now();
    // Batches are asked for ahead by global step, so decoding overlaps the training steps.
    const prefetch = new Prefetcher(this.start.prefetchBatches ?? 2, totalSteps, (s) =>
      this.data.trainBatch(Math.floor(s / stepsPerEpoch), s % stepsPerEpoch, train.batchSize),
    );
    for (; epoch < train.epochs && this.step < totalSteps && !stopped; epoch++) {
      const ran = await this.trainEpoch(epoch, firstBatch, prefetch, controls);
      stopped = ran.stopped;
      firstBatch = 0;
      if (stopped) break;
      await this.endEpoch(ran.checkpointAfterValidation, epoch);
    }
    this.flush();
    prefetch.clear();
    if (stopped) return this.stop(stopped);
    // Every finished run ends with a checkpoint, with or without a checkpoint spec: it is the
    // model users export and query.
    const { step } = this;
    if (step > 0 && this.lastCheckpoint !== step) await this.saveAt(step, Math.max(0, epoch - 1));
    const result: TrainResult = {
      steps: step,
      epochs: Math.ceil(step / stepsPerEpoch),
      finalLoss: this.trainLoss,
      valAccuracy: this.lastVal?.accuracy ?? null,
      valTop5: this.lastVal?.top5 ?? null,
      imagesPerSec: ((step - resumedAt) * train.batchSize) / ((performance.now() - started) / 1000),
      backend: this.backend.name,
    };
    this.emit({ type: 'done', result });
  }

  /** The steps of one epoch from `firstBatch`; says whether a stop came and a checkpoint waits. */
  private async trainEpoch(
    epoch: number,
    firstBatch: number,
    prefetch: Prefetcher<ImageBatch>,
    controls: RunControls,
  ): Promise<{ stopped?: 'cancel' | 'shutdown'; checkpointAfterValidation: boolean }> {
    const { stepsPerEpoch, totalSteps } = this;
    const { checkpoint } = this.spec;
    let checkpointAfterValidation = false;
    for (let b = firstBatch; b < stepsPerEpoch && this.step < totalSteps; b++) {
      await yieldToEvents();
      const stopped = controls.stopRequested();
      if (stopped) return { stopped, checkpointAfterValidation };
      const waitStart = performance.now();
      const batch = await prefetch.take(epoch * stepsPerEpoch + b);
      this.trainStep(batch, performance.now() - waitStart);
      this.emit({ type: 'progress', step: this.step, totalSteps, epoch });
      if (Date.now() - this.lastFlush >= METRIC_FLUSH_MS) this.flush();
      if (checkpoint && this.step % checkpoint.everySteps === 0 && this.step < totalSteps) {
        const epochEnds = b === stepsPerEpoch - 1;
        if (epochEnds) {
          checkpointAfterValidation = true; // so it carries this epoch's validation
        } else {
          this.flush();
          await this.saveAt(this.step, epoch);
        }
      }
    }
    return { checkpointAfterValidation };
  }

  /** One optimisation step on `batch`, with its training sums and step metrics. */
  private trainStep(batch: ImageBatch, dataWaitMs: number): void {
    const { model: modelSpec, train } = this.spec;
    const { images, labels } = tensorsOf(batch, modelSpec.inputSize, modelSpec.channels);
    const t0 = performance.now();
    const result = this.trainer.trainStep(images, labels);
    const seconds = (performance.now() - t0) / 1000;
    tf.dispose([images, labels]);
    // The first NaN ends the run: every later step, metric and checkpoint would carry it on.
    if (!Number.isFinite(result.loss))
      throw new DivergedError(result.step, 'the training loss', result.loss);
    this.step = result.step + 1;
    this.trainLoss = result.loss;
    const totals = this.epochTotals;
    totals.epochSteps += 1;
    totals.epochAccuracySum += result.accuracy;
    totals.epochTop5Sum += result.top5;
    totals.epochMainLossSum += result.mainLoss;
    if (result.step % this.start.metricsEverySteps === 0 || this.step === this.totalSteps) {
      this.point('train/loss', result.step, result.loss);
      this.point('train/lr', result.step, result.learningRate);
      this.point('train/images_per_sec', result.step, train.batchSize / seconds);
      this.point('train/data_wait_ms', result.step, dataWaitMs);
      for (const [name, value] of Object.entries(systemMetrics()))
        this.point(name, result.step, value);
    }
  }

  /** The epoch's figures and validation, then the checkpoint that waited for them. */
  private async endEpoch(checkpointAfterValidation: boolean, epoch: number): Promise<void> {
    const { model: modelSpec, train } = this.spec;
    // Epoch metrics are stamped with the epoch's last step, so they line up with train/*.
    const at = this.step - 1;
    const means = epochMeans(this.epochTotals);
    this.point('train/accuracy', at, means.accuracy);
    this.point('train/top5', at, means.top5);
    this.point('train/epoch_loss', at, means.mainLoss);
    this.epochTotals = emptyEpochTotals();
    const shape = { inputSize: modelSpec.inputSize, channels: modelSpec.channels };
    const val = await validate(this.model, this.data, shape, train.batchSize, modelSpec.numClasses);
    if (val) {
      this.lastVal = { step: this.step, ...val };
      this.point('val/loss', at, val.loss);
      this.point('val/accuracy', at, val.accuracy);
      this.point('val/top5', at, val.top5);
    }
    this.flush();
    if (checkpointAfterValidation) await this.saveAt(this.step, epoch);
  }

  /** A stop between steps: a shutdown checkpoints first, so the next worker loses no steps. */
  private async stop(reason: 'cancel' | 'shutdown'): Promise<void> {
    const { step } = this;
    if (reason === 'shutdown' && step > 0 && this.lastCheckpoint !== step) {
      await this.saveAt(step, Math.floor((step - 1) / this.stepsPerEpoch));
    }
    this.emit({ type: 'stopped', step, reason });
  }
}
