/**
 * Finds a weight that is no longer a finite number, the sign of a run that diverged. One
 * reduction per variable on the backend, one number read back each: cheap beside a checkpoint
 * save, which is when the training loop asks.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** The first weight holding a NaN or an infinity: its name and one such value; else undefined. */
export function nonFiniteWeight(
  model: tfl.LayersModel,
): { name: string; value: number } | undefined {
  for (const weight of model.weights) {
    const sum = tf.tidy(() => tf.sum(weight.read()).dataSync()[0] ?? 0);
    // A sum of finite float32 values can overflow to Infinity, so look closer before saying so.
    if (Number.isFinite(sum)) continue;
    const values = weight.read().dataSync();
    const bad = values.find((v) => !Number.isFinite(v));
    if (bad !== undefined) return { name: weight.originalName, value: bad };
  }
  return undefined;
}
