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
import { loadBackend } from '../../model/backend.js';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../../checkpoints/checkpoint.js';
import { createGoogLeNet, predictLogits } from '../../model/googlenet.js';
import { createTrainer } from '../../model/train-step.js';
import { summedCrossEntropy } from '../../model/summed-cross-entropy.js';
import { topKHits } from '../../model/top-k-hits.js';
import { emptyEpochTotals, epochMeans, restoreEpochTotals } from './epoch-totals.js';
import type { ChildMessage, MetricPointMessage, StartMessage } from '../ipc.js';
import { openTrainingData, type TrainingData } from './training-data.js';
import { UnrecoverableRunError } from '../../spec/unrecoverable-run-error.js';

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
  const { job, artifactDir } = start;
  const { model: modelSpec, dataset: dataSpec, train, checkpoint } = job.spec;

  const backend = await loadBackend({
    backend: start.backend,
    ...(start.threads !== undefined ? { threads: start.threads } : {}),
  });
  emit({ type: 'backend', backend });

  // File data sets are decoded in the pipeline's threads; they end with this process (the
  // child exits after every run), so no path needs to close them.
  const shape = { inputSize: modelSpec.inputSize, channels: modelSpec.channels };
  const data = await openTrainingData({
    dataset: dataSpec,
    shape,
    dataRoot: start.dataRoot ?? '',
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

  let pending: MetricPointMessage[] = [];
  let lastFlush = Date.now();
  const flush = (): void => {
    if (pending.length > 0) emit({ type: 'metrics', points: pending });
    pending = [];
    lastFlush = Date.now();
  };
  const point = (name: string, step: number, value: number): void => {
    if (Number.isFinite(value)) pending.push({ name, step, value, time: Date.now() });
  };

  // Checkpoints record the metrics measured on exactly their weights: the latest train loss, and
  // validation only when it ran at that step (keepBest must not credit a checkpoint with an
  // earlier epoch's score).
  let trainLoss = Number.NaN;
  let lastVal: { step: number; loss: number; accuracy: number; top5: number } | undefined;
  const metricsAt = (step: number): Record<string, number> => ({
    ...(Number.isFinite(trainLoss) ? { 'train/loss': trainLoss } : {}),
    ...(lastVal && lastVal.step === step
      ? { 'val/loss': lastVal.loss, 'val/accuracy': lastVal.accuracy, 'val/top5': lastVal.top5 }
      : {}),
  });
  const saveAt = async (step: number, epoch: number): Promise<void> => {
    const dir = path.join(artifactDir, `step-${step}`);
    // A directory for this step can only be left by an earlier attempt that went past our
    // resume point (and whose checkpoint was torn or rejected): this run recomputed the step.
    await rm(dir, { recursive: true, force: true });
    const metrics = metricsAt(step);
    const saved = await saveCheckpoint(dir, {
      model,
      optimizer: trainer.optimizer.getState(),
      state: { step, epoch, seed: train.seed, metrics, data: { ...epochTotals } },
    });
    const { files, bytes, sha256 } = saved;
    emit({ type: 'checkpoint', step, epoch, location: dir, files, bytes, sha256, metrics });
  };

  let step = 0;
  // The running epoch's training sums, carried through checkpoints so a mid-epoch resume reports
  // the same epoch figures as an uninterrupted run.
  let epochTotals = emptyEpochTotals();
  let stopped: 'cancel' | 'shutdown' | undefined;
  let lastCheckpoint = -1;
  // Resume: weights, optimizer state and step from the newest checkpoint that loads; the data
  // order and dropout masks follow from (seed, epoch, step), so the run continues exactly.
  for (const location of start.resumeFrom ?? []) {
    try {
      const loaded = await loadCheckpoint(location, model);
      trainer.restore(loaded.state.step, loaded.optimizer);
      tf.dispose([...loaded.optimizer.slots.values()]);
      step = loaded.state.step;
      const saved = loaded.state.metrics ?? {};
      if (saved['train/loss'] !== undefined) trainLoss = saved['train/loss'];
      if (saved['val/accuracy'] !== undefined) {
        lastVal = {
          step,
          loss: saved['val/loss'] ?? Number.NaN,
          accuracy: saved['val/accuracy'],
          top5: saved['val/top5'] ?? Number.NaN,
        };
      }
      epochTotals = restoreEpochTotals(loaded.state.data);
      lastCheckpoint = step;
      emit({ type: 'resumed', step, location });
      break;
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      emit({ type: 'checkpoint-rejected', location, reason: error.message });
    }
  }
  if ((start.resumeFrom ?? []).length > 0 && step === 0) emit({ type: 'fresh-start' });
  const resumedAt = step;
  let epoch = Math.floor(step / stepsPerEpoch);
  let firstBatch = step % stepsPerEpoch;
  const started = performance.now();
  // Batches are asked for ahead by global step, so decoding overlaps the training steps.
  const prefetch = new Prefetcher(start.prefetchBatches ?? 2, totalSteps, (s) =>
    data.trainBatch(Math.floor(s / stepsPerEpoch), s % stepsPerEpoch, train.batchSize),
  );
  for (; epoch < train.epochs && step < totalSteps && !stopped; epoch++) {
    let checkpointAfterValidation = false;
    for (let b = firstBatch; b < stepsPerEpoch && step < totalSteps; b++) {
      await yieldToEvents();
      stopped = controls.stopRequested();
      if (stopped) break;
      const waitStart = performance.now();
      const batch = await prefetch.take(epoch * stepsPerEpoch + b);
      const dataWaitMs = performance.now() - waitStart;
      const { images, labels } = tensorsOf(batch, modelSpec.inputSize, modelSpec.channels);
      const t0 = performance.now();
      const result = trainer.trainStep(images, labels);
      const seconds = (performance.now() - t0) / 1000;
      tf.dispose([images, labels]);
      step = result.step + 1;
      trainLoss = result.loss;
      epochTotals.epochSteps += 1;
      epochTotals.epochAccuracySum += result.accuracy;
      epochTotals.epochTop5Sum += result.top5;
      epochTotals.epochMainLossSum += result.mainLoss;
      if (result.step % start.metricsEverySteps === 0 || step === totalSteps) {
        point('train/loss', result.step, result.loss);
        point('train/lr', result.step, result.learningRate);
        point('train/images_per_sec', result.step, train.batchSize / seconds);
        point('train/data_wait_ms', result.step, dataWaitMs);
        for (const [name, value] of Object.entries(systemMetrics()))
          point(name, result.step, value);
      }
      emit({ type: 'progress', step, totalSteps, epoch });
      if (Date.now() - lastFlush >= METRIC_FLUSH_MS) flush();
      if (checkpoint && step % checkpoint.everySteps === 0 && step < totalSteps) {
        const epochEnds = b === stepsPerEpoch - 1;
        if (epochEnds) {
          checkpointAfterValidation = true; // so it carries this epoch's validation
        } else {
          flush();
          await saveAt(step, epoch);
          lastCheckpoint = step;
        }
      }
    }
    firstBatch = 0;
    if (stopped) break;
    // Epoch metrics are stamped with the epoch's last step, so they line up with train/*.
    const at = step - 1;
    const means = epochMeans(epochTotals);
    point('train/accuracy', at, means.accuracy);
    point('train/top5', at, means.top5);
    point('train/epoch_loss', at, means.mainLoss);
    epochTotals = emptyEpochTotals();
    const val = await validate(model, data, shape, train.batchSize, modelSpec.numClasses);
    if (val) {
      lastVal = { step, ...val };
      point('val/loss', at, val.loss);
      point('val/accuracy', at, val.accuracy);
      point('val/top5', at, val.top5);
    }
    flush();
    if (checkpointAfterValidation) {
      await saveAt(step, epoch);
      lastCheckpoint = step;
    }
  }
  flush();
  prefetch.clear();
  if (stopped) {
    // A shutdown hands the run to another worker: checkpoint now so it loses no steps.
    if (stopped === 'shutdown' && step > 0 && lastCheckpoint !== step) {
      await saveAt(step, Math.floor((step - 1) / stepsPerEpoch));
    }
    emit({ type: 'stopped', step, reason: stopped });
    return;
  }
  // Every finished run ends with a checkpoint, with or without a checkpoint spec: it is the
  // model users export and query.
  if (step > 0 && lastCheckpoint !== step) await saveAt(step, Math.max(0, epoch - 1));
  const result: TrainResult = {
    steps: step,
    epochs: Math.ceil(step / stepsPerEpoch),
    finalLoss: trainLoss,
    valAccuracy: lastVal?.accuracy ?? null,
    valTop5: lastVal?.top5 ?? null,
    imagesPerSec: ((step - resumedAt) * train.batchSize) / ((performance.now() - started) / 1000),
    backend: backend.name,
  };
  emit({ type: 'done', result });
}
