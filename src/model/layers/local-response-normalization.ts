import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export interface LocalResponseNormalizationArgs {
  /** Channels in the window (odd). @defaultValue 5 */
  size?: number;
  /** @defaultValue 1e-4 */
  alpha?: number;
  /** @defaultValue 0.75 */
  beta?: number;
  /** @defaultValue 1 */
  k?: number;
  name?: string;
}

/**
 * Cross-channel LRN as in Caffe (and the paper's GoogLeNet):
 * y = x / (k + alpha/size * sum_{window} x^2)^beta, the window centred on each channel.
 *
 * Why not `tf.localResponseNormalization`: the wasm backend has no LRN kernel (nor its
 * gradient), so the window sum is written with ops every backend differentiates.
 */
export class LocalResponseNormalization extends tfl.layers.Layer {
  static readonly className = 'LocalResponseNormalization';
  readonly size: number;
  readonly alpha: number;
  readonly beta: number;
  readonly k: number;

  constructor(args: LocalResponseNormalizationArgs = {}) {
    super(args.name === undefined ? {} : { name: args.name });
    this.size = args.size ?? 5;
    this.alpha = args.alpha ?? 1e-4;
    this.beta = args.beta ?? 0.75;
    this.k = args.k ?? 1;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const channels = x.shape[3];
      const half = Math.floor(this.size / 2);
      const squared = tf.pad(tf.square(x), [
        [0, 0],
        [0, 0],
        [0, 0],
        [half, half],
      ]);
      let windowSum: tf.Tensor = tf.slice(squared, [0, 0, 0, 0], [-1, -1, -1, channels]);
      for (let offset = 1; offset < this.size; offset++) {
        windowSum = tf.add(windowSum, tf.slice(squared, [0, 0, 0, offset], [-1, -1, -1, channels]));
      }
      const denominator = tf.pow(
        tf.add(tf.scalar(this.k), tf.mul(tf.scalar(this.alpha / this.size), windowSum)),
        tf.scalar(this.beta),
      );
      return tf.div(x, denominator);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), size: this.size, alpha: this.alpha, beta: this.beta, k: this.k };
  }
}

tf.serialization.registerClass(LocalResponseNormalization);
