/** Top-k accuracy counting, shared by the training step, validation and eval runs. */
import * as tf from '@tensorflow/tfjs-core';

/**
 * How many rows of `logits` have their label among their k highest logits (k is capped at the
 * number of classes, so top-5 of a 4-class problem is top-4, i.e. always a hit).
 */
export function topKHits(logits: tf.Tensor2D, labels: tf.Tensor1D, k: number): tf.Scalar {
  return tf.tidy(() => {
    const { indices } = tf.topk(logits, Math.min(k, logits.shape[1]));
    const hit = tf.any(tf.equal(indices, tf.expandDims(labels, 1)), 1);
    return tf.sum(tf.cast(hit, 'float32')) as tf.Scalar;
  });
}
