/** Top-k hit counting: ties to labels, k capped at the classes, and no tensor left behind. */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { topKHits } from '../../src/model/top-k-hits.js';
import { useBackend } from '../helpers/backends.js';

// wasm: what workers train on here.
beforeAll(async () => {
  await useBackend('wasm');
});

describe('topKHits', () => {
  const logits = () =>
    tf.tensor2d([
      [0.1, 0.9, 0.0, 0.3], // order 1, 3, 0, 2
      [0.8, 0.1, 0.05, 0.7], // order 0, 3, 1, 2
      [0.2, 0.1, 0.6, 0.5], // order 2, 3, 0, 1
    ]);
  const labels = () => tf.tensor1d([3, 2, 1], 'int32');

  it('counts the rows whose label is among their k highest logits', () => {
    const l = logits();
    const y = labels();
    expect(topKHits(l, y, 1).dataSync()[0]).toBe(0);
    expect(topKHits(l, y, 2).dataSync()[0]).toBe(1); // row 0 (3 is second)
    expect(topKHits(l, y, 3).dataSync()[0]).toBe(1);
    tf.dispose([l, y]);
  });

  it('caps k at the number of classes (top-5 of 4 classes hits every row)', () => {
    const l = logits();
    const y = labels();
    expect(topKHits(l, y, 5).dataSync()[0]).toBe(3);
    tf.dispose([l, y]);
  });

  it('leaves only its answer behind', () => {
    const l = logits();
    const y = labels();
    const before = tf.memory().numTensors;
    const hits = topKHits(l, y, 2);
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([hits, l, y]);
  });
});
