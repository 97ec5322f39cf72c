import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { syntheticBatch } from '../../src/data/synthetic.js';
import { createGoogLeNet } from '../../src/model/googlenet.js';

/** The tiny preset model tests train: 1/8 width, 32x32, 4 classes. */
export const TINY = { numClasses: 4, inputSize: 32, width: 0.125 } as const;

export function tinyModel(seed = 1): tfl.LayersModel {
  return createGoogLeNet({ ...TINY, seed });
}

/** A fixed batch of the generated data set, as tensors (caller disposes). */
export function tinyBatch(
  start: number,
  batchSize = 4,
): { images: tf.Tensor4D; labels: tf.Tensor1D } {
  const batch = syntheticBatch(
    { numClasses: TINY.numClasses, size: 64, seed: 3, inputSize: TINY.inputSize, channels: 3 },
    start,
    batchSize,
  );
  return {
    images: tf.tensor4d(batch.images, [batchSize, TINY.inputSize, TINY.inputSize, 3]),
    labels: tf.tensor1d(batch.labels, 'int32'),
  };
}

/** Every weight's bytes, keyed by layer-qualified name (stable across models in one process). */
export function weightBytes(model: tfl.LayersModel): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const w of model.weights) {
    const data = w.read().dataSync() as Float32Array;
    out.set(
      w.originalName,
      new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
    );
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
