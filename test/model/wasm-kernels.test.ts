import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropoutLayers } from '../../src/model/googlenet.js';
import { trainableVariables } from '../../src/model/layer-variables.js';
import { relativeError, useBackend } from '../helpers/backends.js';
import { TINY, tinyBatch, tinyModel } from '../helpers/tiny-training.js';

type Pad = 'same' | 'valid';
interface ConvCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: Pad;
}

// GoogLeNet's shapes (stem 7x7/2, 1x1, 3x3, 5x5 'same') plus odd sizes, valid padding and
// strides that leave input rows unread.
const convCases: ConvCase[] = [
  { x: [2, 9, 9, 5], filter: [3, 3, 5, 4], stride: 1, pad: 'same' },
  { x: [2, 9, 9, 5], filter: [1, 1, 5, 4], stride: 1, pad: 'same' },
  { x: [2, 8, 8, 6], filter: [5, 5, 6, 3], stride: 1, pad: 'same' },
  { x: [2, 8, 8, 6], filter: [3, 3, 6, 3], stride: 1, pad: 'valid' },
  { x: [2, 11, 11, 3], filter: [7, 7, 3, 4], stride: 2, pad: 'same' },
  { x: [2, 10, 10, 3], filter: [7, 7, 3, 4], stride: 2, pad: 'same' },
  { x: [1, 10, 9, 3], filter: [3, 3, 3, 2], stride: 2, pad: 'valid' },
  // Maps smaller than the filter's reach (GoogLeNet's 4x/5x stages at 32x32 input): the
  // filter is cropped to the taps that meet real input.
  { x: [3, 1, 1, 8], filter: [3, 3, 8, 4], stride: 1, pad: 'same' },
  { x: [2, 2, 2, 6], filter: [5, 5, 6, 4], stride: 1, pad: 'same' },
  { x: [2, 1, 3, 4], filter: [3, 5, 4, 2], stride: 1, pad: 'same' },
  { x: [2, 2, 2, 3], filter: [3, 3, 3, 2], stride: 1, pad: 'same' },
  { x: [1, 7, 5, 2], filter: [3, 5, 2, 3], stride: 3, pad: 'same' },
];

interface ConvGrads {
  y: Float32Array;
  dx: Float32Array;
  dFilter: Float32Array;
}

function convGrads(c: ConvCase, xValues: Float32Array, fValues: Float32Array): Promise<ConvGrads> {
  const x = tf.tensor4d(xValues, c.x);
  const f = tf.tensor4d(fValues, c.filter);
  // A non-uniform upstream gradient, so every output position weighs differently.
  const grad = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad))),
  );
  const [dx, df] = grad([x, f]) as [tf.Tensor, tf.Tensor];
  const y = tf.conv2d(x, f, c.stride, c.pad);
  return Promise.all([y.data(), dx.data(), df.data()]).then(([out, a, b]) => {
    tf.dispose([x, f, y, dx, df]);
    return { y: out as Float32Array, dx: a as Float32Array, dFilter: b as Float32Array };
  });
}

function randomValues(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
}

beforeAll(async () => {
  await useBackend('cpu');
});
afterAll(async () => {
  await useBackend('cpu');
});

describe('wasm training kernels match the cpu backend', () => {
  for (const c of convCases) {
    it(`conv2d and its gradients for x ${c.x.join('x')}, filter ${c.filter.join('x')}, stride ${c.stride}, ${c.pad}`, async () => {
      await useBackend('cpu');
      const xValues = randomValues(c.x, 1);
      const fValues = randomValues(c.filter, 2);
      const expected = await convGrads(c, xValues, fValues);
      await useBackend('wasm');
      const actual = await convGrads(c, xValues, fValues);
      expect(relativeError(actual.y, expected.y)).toBeLessThan(1e-5);
      expect(relativeError(actual.dFilter, expected.dFilter)).toBeLessThan(1e-5);
      expect(relativeError(actual.dx, expected.dx)).toBeLessThan(1e-5);
    });
  }

  const matMulCases: Array<[number, number, number, boolean, boolean]> = [
    [5, 7, 3, false, false],
    [5, 7, 3, true, false],
    [5, 7, 3, false, true],
    [5, 7, 3, true, true],
    [64, 3, 40, true, false], // big transposed operand: transposes the small one instead
    [3, 64, 40, false, true],
    [3, 64, 40, false, false], // small batch, big kernel: packs the batch instead
  ];
  for (const [m, k, n, ta, tb] of matMulCases) {
    it(`matMul ${m}x${k}·${k}x${n} transposeA=${ta} transposeB=${tb}`, async () => {
      const aShape = ta ? [k, m] : [m, k];
      const bShape = tb ? [n, k] : [k, n];
      const a = randomValues(aShape, 3);
      const b = randomValues(bShape, 4);
      const product = (): Float32Array =>
        tf.tidy(
          () =>
            tf
              .matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb)
              .dataSync() as Float32Array,
        );
      await useBackend('cpu');
      const expected = product();
      await useBackend('wasm');
      const actual = product();
      expect(actual.length).toBe(m * n);
      expect(relativeError(actual, expected)).toBeLessThan(1e-5);
    });
  }

  it('registers Conv2DBackpropFilter, which stock tfjs-backend-wasm lacks', async () => {
    await useBackend('wasm');
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });
});

describe('wasm MaxPoolGrad matches the cpu backend', () => {
  const poolCases: Array<{
    x: [number, number, number, number];
    size: number;
    stride: number;
    pad: Pad;
  }> = [
    { x: [2, 8, 8, 3], size: 3, stride: 2, pad: 'same' },
    { x: [2, 7, 7, 4], size: 3, stride: 1, pad: 'same' },
    { x: [1, 9, 6, 2], size: 3, stride: 2, pad: 'valid' },
    { x: [2, 4, 4, 5], size: 2, stride: 2, pad: 'valid' },
  ];
  for (const c of poolCases) {
    it(`maxPool ${c.size}x${c.size}/${c.stride} ${c.pad} on ${c.x.join('x')}, with ties from ReLU zeros`, async () => {
      // ReLU makes many zeros, so windows have ties; the first maximum must get the gradient.
      await useBackend('cpu');
      const values = randomValues(c.x, 5).map((v) => Math.max(0, v));
      const grad = (): Float32Array =>
        tf.tidy(() => {
          const g = tf.grad((x: tf.Tensor) => {
            const pooled = tf.maxPool(x as tf.Tensor4D, c.size, c.stride, c.pad);
            return tf.sum(tf.mul(pooled, tf.reshape(tf.range(1, pooled.size + 1), pooled.shape)));
          });
          return g(tf.tensor4d(values, c.x)).dataSync() as Float32Array;
        });
      const expected = grad();
      await useBackend('wasm');
      const actual = grad();
      expect(relativeError(actual, expected)).toBeLessThan(1e-6);
    });
  }
});

describe('whole-network gradients on wasm match cpu', () => {
  it('every GoogLeNet variable’s gradient is within 1e-4 relative error (tiny input, aux heads on)', async () => {
    await useBackend('cpu');
    const model = tinyModel(3);
    dropoutLayers(model).forEach((layer, index) => {
      (layer as unknown as { seed: number }).seed = 100 + index;
    });
    const { images, labels } = tinyBatch(0);
    const variables = trainableVariables(model);
    const gradients = (): Map<string, Float32Array> => {
      const { value, grads } = tf.variableGrads(() => {
        const [main, aux1, aux2] = model.apply(images, { training: true }) as tf.Tensor[];
        const oneHot = tf.oneHot(labels, TINY.numClasses);
        const ce = (t: tf.Tensor): tf.Scalar =>
          tf.losses.softmaxCrossEntropy(oneHot, t) as tf.Scalar;
        return tf.add(ce(main!), tf.mul(tf.add(ce(aux1!), ce(aux2!)), 0.3)) as tf.Scalar;
      }, variables);
      const out = new Map(
        Object.entries(grads).map(([name, g]) => [name, g.dataSync() as Float32Array]),
      );
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const expected = gradients();
    await useBackend('wasm');
    const actual = gradients();
    expect(actual.size).toBe(variables.length);
    let worst = 0;
    for (const [name, g] of expected) {
      const a = actual.get(name)!;
      // Relative to the gradient's norm: elementwise ratios of tiny entries are noise.
      let diff = 0;
      let norm = 0;
      g.forEach((v, i) => {
        diff += (a[i]! - v) ** 2;
        norm += v ** 2;
      });
      const rel = Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12);
      worst = Math.max(worst, rel);
      expect(rel, name).toBeLessThanOrEqual(1e-4);
    }
    expect(worst).toBeGreaterThan(0); // two backends never agree bit for bit on every sum
    tf.dispose([images, labels]);
    model.dispose();
  });
});

describe('wasm SplitV matches the cpu backend', () => {
  for (const [shape, sizes, axis] of [
    [[2, 3, 3, 10], [4, 3, 2, 1], 3],
    [[2, 3, 3, 10], [5, 5], -1],
    [[4, 6], [1, 2, 3], 1],
    [[2, 6, 3], [2, 4], 1], // not the last axis: the stock kernel
  ] as Array<[number[], number[], number]>) {
    it(`splits ${shape.join('x')} into ${sizes.join('+')} on axis ${axis}`, async () => {
      await useBackend('cpu');
      const values = randomValues(shape, 6);
      const split = (): Float32Array[] =>
        tf.tidy(() =>
          tf.split(tf.tensor(values, shape), sizes, axis).map((t) => t.dataSync() as Float32Array),
        );
      const expected = split();
      await useBackend('wasm');
      const actual = split();
      expect(actual.map((a) => a.length)).toEqual(expected.map((e) => e.length));
      actual.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(expected[i]!)));
    });
  }
});
