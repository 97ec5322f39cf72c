import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { nonFiniteWeight } from '../../src/model/non-finite-weight.js';
import { useBackend } from '../helpers/backends.js';
import { tinyModel } from '../helpers/tiny-training.js';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('nonFiniteWeight', () => {
  it('finds a NaN weight by name, and nothing in a fresh model', () => {
    const model = tinyModel();
    expect(nonFiniteWeight(model)).toBeUndefined();
    const weight = model.weights.find((w) => w.originalName.includes('inception4c/3x3'))!;
    const values = weight.read().dataSync().slice();
    values[3] = Number.NaN;
    weight.write(tf.tensor(values, weight.read().shape));
    expect(nonFiniteWeight(model)).toEqual({ name: weight.originalName, value: Number.NaN });
    model.dispose();
  });
});
