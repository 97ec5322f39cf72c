/**
 * One evaluation, inside the child process: rebuild the trained run's GoogLeNet, load the
 * checkpoint the parent downloaded, run the data set's test split through the main head, and
 * report top-1/top-5, loss, per-class precision and recall and the confusion matrix. Running
 * `eval/*` figures go out as metric series (step = batches done) while it works.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { EvalResult } from '../../spec/run-results.js';
import { loadBackend } from '../../model/backend.js';
import { loadCheckpoint } from '../../checkpoints/checkpoint.js';
import { createGoogLeNet, predictLogits } from '../../model/googlenet.js';
import { summedCrossEntropy } from '../../model/summed-cross-entropy.js';
import { topKHits } from '../../model/top-k-hits.js';
import type { ChildMessage, EvalStartMessage } from '../ipc.js';
import type { RunControls } from './train-run.js';
import { openTrainingData } from './training-data.js';
import { UnrecoverableRunError } from '../../spec/unrecoverable-run-error.js';

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
    const loaded = await loadCheckpoint(start.checkpointDir, model);
    tf.dispose([...loaded.optimizer.slots.values()]);
  } catch (error) {
    throw new UnrecoverableRunError(
      `checkpoint unusable: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const data = await openTrainingData({
    dataset: spec.dataset,
    shape: { inputSize, channels },
    dataRoot: start.dataRoot,
    threads: start.dataThreads,
    evaluate: true,
    ...(spec.dataInfo ? { stored: spec.dataInfo } : {}),
  });
  try {
    const confusion = Array.from({ length: numClasses }, () =>
      new Array<number>(numClasses).fill(0),
    );
    let count = 0;
    let lossSum = 0;
    let top5Hits = 0;
    let batches = 0;
    const totalSteps = Math.ceil(data.info.valImages / spec.batchSize);
    const k = Math.min(5, numClasses);
    for await (const batch of data.heldOutBatches(spec.batchSize)) {
      await new Promise((resolve) => setImmediate(resolve));
      const stopped = controls.stopRequested();
      if (stopped) {
        emit({ type: 'stopped', step: batches, reason: stopped });
        return;
      }
      const [loss, predicted, hits5] = tf.tidy(() => {
        const images = tf.tensor4d(batch.images, [batch.count, inputSize, inputSize, channels]);
        const labels = tf.tensor1d(batch.labels, 'int32');
        const logits = predictLogits(model, images);
        const ce = summedCrossEntropy(logits, labels, numClasses);
        const hit5 = topKHits(logits, labels, k);
        return [ce.dataSync()[0] ?? 0, tf.argMax(logits, 1).dataSync(), hit5.dataSync()[0] ?? 0];
      });
      for (let i = 0; i < batch.count; i++) {
        const row = confusion[batch.labels[i] as number] as number[];
        const p = predicted[i] as number;
        row[p] = (row[p] as number) + 1;
      }
      count += batch.count;
      lossSum += loss;
      top5Hits += hits5;
      batches += 1;
      const correct = confusion.reduce((sum, row, c) => sum + (row[c] as number), 0);
      const time = Date.now();
      emit({
        type: 'metrics',
        points: [
          { name: 'eval/loss', step: batches, value: lossSum / count, time },
          { name: 'eval/top1', step: batches, value: correct / count, time },
          { name: 'eval/top5', step: batches, value: top5Hits / count, time },
        ],
      });
      emit({ type: 'progress', step: batches, totalSteps, epoch: 0 });
    }
    if (count === 0) throw new UnrecoverableRunError('the test split holds no images');
    const correct = confusion.reduce((sum, row, c) => sum + (row[c] as number), 0);
    const result: EvalResult = {
      top1: correct / count,
      top5: top5Hits / count,
      loss: lossSum / count,
      count,
      perClass: confusion.map((row, c) => {
        const truePositives = row[c] as number;
        const actual = row.reduce((a, b) => a + b, 0);
        const predictedAs = confusion.reduce((sum, r) => sum + (r[c] as number), 0);
        return {
          label: data.info.classes[c] ?? String(c),
          precision: predictedAs > 0 ? truePositives / predictedAs : null,
          recall: actual > 0 ? truePositives / actual : null,
          count: actual,
        };
      }),
      confusionMatrix: confusion,
      backend: backend.name,
    };
    emit({ type: 'done', result });
  } finally {
    model.dispose();
    await data.close();
  }
}
