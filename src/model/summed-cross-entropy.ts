import * as tf from '@tensorflow/tfjs-core';

/**
 * Softmax cross-entropy of `logits` against integer `labels`, summed over the batch rather than
 * averaged, so that validation and evaluation can add batches of any size and divide once by the
 * images they counted.
 */
export function summedCrossEntropy(
  logits: tf.Tensor,
  labels: tf.Tensor,
  numClasses: number,
): tf.Tensor {
  return tf.losses.softmaxCrossEntropy(
    tf.oneHot(labels as tf.Tensor1D, numClasses),
    logits,
    undefined,
    undefined,
    tf.Reduction.SUM,
  );
}
