import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * The tf.Variable behind a layer weight. tfjs-layers types `LayerVariable.read()` as a plain
 * Tensor and keeps the variable private (`val`), but autograd (`tf.variableGrads`) and
 * in-place updates need the variable itself.
 */
export function variableOf(weight: tfl.LayerVariable): tf.Variable {
  return (weight as unknown as { val: tf.Variable }).val;
}

/** The model's trainable variables, in the model's weight order. */
export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map(variableOf);
}
