/**
 * One evaluation, inside the child process: rebuild the trained run's GoogLeNet, load the
 * checkpoint the parent downloaded, run the data set's test split through the main head, and
 * report top-1/top-5, loss, per-class precision and recall and the confusion matrix. Running
 * `eval/*` figures go out as metric series (step = batches done) while it works.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { loadBackend } from '../../model/backend.js';
import { loadCheckpoint } from '../../checkpoints/checkpoint.js';
import { createGoogLeNet, predictLogits } from '../../model/googlenet.js';
import { summedCrossEntropy } from '../../model/summed-cross-entropy.js';
import { topKHits } from '../../model/top-k-hits.js';
import type { ChildMessage, EvalStartMessage } from '../ipc.js';
import type { ImageBatch } from '../../data/synthetic.js';
import { EvalTally, type BatchScore } from './eval-tally.js';
import type { RunControls } from './train-run.js';
import { openTrainingData, type TrainingData } from './training-data.js';
import { UnrecoverableRunError } from '../../spec/unrecoverable-run-error.js';

/**
 * Evaluates `start.job`'s trained run on its data set's test split and emits the running
 * figures, then `done` with the result (or `stopped` when the parent asks it to stop).
 */
export async function runEvaluation(
  start: EvalStartMessage,
  emit: (message: ChildMessage) => void,
  controls: RunControls,
): Promise<void> {
  const { spec } = start.job;
  const backend = await loadBackend({
    backend: start.backend,
    ...(start.threads !== undefined ? { threads: start.threads } : {}),
  });
  emit({ type: 'backend', backend });
  const model = await loadTrainedModel(spec, start.checkpointDir);
  const { numClasses, inputSize, channels } = spec.model;
  let data: TrainingData;
  try {
    data = await openTrainingData({
      dataset: spec.dataset,
      shape: { inputSize, channels },
      dataRoot: start.dataRoot,
      limits: start.dataLimits,
      threads: start.dataThreads,
      evaluate: true,
      ...(spec.dataInfo ? { stored: spec.dataInfo } : {}),
    });
  } catch (error) {
    // A data set the worker refuses (DatasetError: unrecoverable) fails the eval; the model goes.
    model.dispose();
    throw error;
  }
  try {
    const tally = new EvalTally(numClasses);
    const totalSteps = Math.ceil(data.info.valImages / spec.batchSize);
    for await (const batch of data.heldOutBatches(spec.batchSize)) {
      // Yield to the event loop so a stop message that arrived meanwhile is seen.
      await new Promise((resolve) => setImmediate(resolve));
      const stopped = controls.stopRequested();
      if (stopped) {
        emit({ type: 'stopped', step: tally.batches, reason: stopped });
        return;
      }
      tally.add(batch.labels, batch.count, scoreBatch(model, batch, spec.model));
      emit({ type: 'metrics', points: tally.runningPoints(Date.now()) });
      emit({ type: 'progress', step: tally.batches, totalSteps, epoch: 0 });
    }
    if (tally.count === 0) throw new UnrecoverableRunError('the test split holds no images');
    emit({ type: 'done', result: tally.result(data.info.classes, backend.name) });
  } finally {
    model.dispose();
    await data.close();
  }
}

/**
 * Rebuilds the evaluated run's network and loads its checkpoint's weights. A checkpoint that
 * does not fit the network fails the evaluation for good: retrying would read the same files.
 */
async function loadTrainedModel(
  spec: EvalStartMessage['job']['spec'],
  checkpointDir: string,
): Promise<tfl.LayersModel> {
  const { numClasses, inputSize, channels } = spec.model;
  const model = createGoogLeNet({
    numClasses,
    inputSize,
    channels,
    width: spec.model.width,
    auxLogits: spec.model.auxLogits,
    norm: spec.model.norm,
    seed: spec.seed,
  });
  try {
    const loaded = await loadCheckpoint(checkpointDir, model);
    // Evaluation never steps the optimizer: its restored state is of no use.
    tf.dispose([...loaded.optimizer.slots.values()]);
  } catch (error) {
    throw new UnrecoverableRunError(
      `checkpoint unusable: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return model;
}

/** Runs one batch through the main head: its summed loss, top-5 hits and top-1 predictions. */
function scoreBatch(
  model: tfl.LayersModel,
  batch: ImageBatch,
  shape: { numClasses: number; inputSize: number; channels: number },
): BatchScore {
  const { numClasses, inputSize, channels } = shape;
  const [loss, predicted, top5Hits] = tf.tidy(() => {
    const images = tf.tensor4d(batch.images, [batch.count, inputSize, inputSize, channels]);
    const labels = tf.tensor1d(batch.labels, 'int32');
    const logits = predictLogits(model, images);
    const ce = summedCrossEntropy(logits, labels, numClasses);
    const hit5 = topKHits(logits, labels, Math.min(5, numClasses));
    return [ce.dataSync()[0] ?? 0, tf.argMax(logits, 1).dataSync(), hit5.dataSync()[0] ?? 0];
  });
  return { loss, top5Hits, predicted };
}
