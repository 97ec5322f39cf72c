import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGoogLeNet, inferenceModel, predictLogits } from '../../src/model/googlenet.js';
import { AdaptiveAveragePooling2D } from '../../src/model/layers/adaptive-average-pooling-2d.js';
import { summarizeModel } from '../../src/model/summary.js';
import { useBackend } from '../helpers/backends.js';

// Table 1 of the paper, written out again here (not imported) so the test is an independent
// check of the model file: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
const TABLE_1: Record<string, [number, number, number, number, number, number]> = {
  '3a': [64, 96, 128, 16, 32, 32],
  '3b': [128, 128, 192, 32, 96, 64],
  '4a': [192, 96, 208, 16, 48, 64],
  '4b': [160, 112, 224, 24, 64, 64],
  '4c': [128, 128, 256, 24, 64, 64],
  '4d': [112, 144, 288, 32, 64, 64],
  '4e': [256, 160, 320, 32, 128, 128],
  '5a': [256, 160, 320, 32, 128, 128],
  '5b': [384, 192, 384, 48, 128, 128],
};

/** Parameters of an inception block (convs with bias) fed `cin` channels. */
function inceptionParams(cin: number, [b1, r3, b3, r5, b5, pp]: number[]): number {
  const conv = (k: number, i: number, o: number): number => k * k * i * o + o;
  return (
    conv(1, cin, b1!) +
    conv(1, cin, r3!) +
    conv(3, r3!, b3!) +
    conv(1, cin, r5!) +
    conv(5, r5!, b5!) +
    conv(1, cin, pp!)
  );
}

function outputsOf(model: tfl.LayersModel, x: tf.Tensor, training: boolean): tf.Tensor[] {
  const out = model.apply(x, { training }) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}

beforeAll(async () => {
  await useBackend('wasm');
});

describe('GoogLeNet graph', () => {
  it('has exactly the BVLC reference totals at 1000 classes, 224x224x3: 6,998,552 without aux heads, 13,378,280 with', () => {
    const plain = createGoogLeNet({ numClasses: 1000, inputSize: 224, auxLogits: false });
    const withAux = createGoogLeNet({ numClasses: 1000, inputSize: 224, auxLogits: true });
    expect(summarizeModel(plain).params).toBe(6_998_552);
    expect(summarizeModel(withAux).params).toBe(13_378_280);
    // Inference uses the same weights without the aux heads.
    expect(inferenceModel(withAux).countParams()).toBe(6_998_552);
    plain.dispose();
    withAux.dispose();
  });

  it('gives every inception block the parameter count that follows from Table 1', () => {
    const model = createGoogLeNet({ numClasses: 1000, inputSize: 224, auxLogits: false });
    const { blocks } = summarizeModel(model);
    let cin = 192;
    for (const [name, widths] of Object.entries(TABLE_1)) {
      expect(blocks[`inception${name}`], `inception${name}`).toBe(inceptionParams(cin, widths));
      cin = widths[0]! + widths[2]! + widths[4]! + widths[5]!;
    }
    expect(cin).toBe(1024);
    expect(blocks['inception3a']).toBe(163_696);
    model.dispose();
  });

  for (const size of [32, 64, 224]) {
    it(`produces [batch, classes] logits at ${size}x${size}, with aux heads in training and only the main head at inference`, () => {
      const width = size === 224 ? 0.25 : 0.5;
      const withAux = createGoogLeNet({ numClasses: 7, inputSize: size, width });
      const plain = createGoogLeNet({ numClasses: 7, inputSize: size, width, auxLogits: false });
      tf.tidy(() => {
        const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1);
        const train = outputsOf(withAux, x, true);
        expect(train.map((t) => t.shape)).toEqual([
          [2, 7],
          [2, 7],
          [2, 7],
        ]);
        expect(outputsOf(plain, x, true).map((t) => t.shape)).toEqual([[2, 7]]);
        const logits = predictLogits(withAux, x as tf.Tensor4D);
        expect(logits.shape).toEqual([2, 7]);
        expect(inferenceModel(withAux).outputs).toHaveLength(1);
        // The inference model shares weights with the training graph's main head.
        const main = outputsOf(withAux, x, false)[0]!;
        expect(Array.from(logits.dataSync())).toEqual(Array.from(main.dataSync()));
      });
      withAux.dispose();
      plain.dispose();
    });
  }

  it('takes grayscale input and a width multiplier', () => {
    const model = createGoogLeNet({ numClasses: 3, inputSize: 48, channels: 1, width: 0.25 });
    expect(model.inputs[0]!.shape).toEqual([null, 48, 48, 1]);
    expect(model.getLayer('inception3a/1x1').outputShape).toEqual([null, 6, 6, 16]);
    model.dispose();
  });

  it('avoids the known mistakes of the widely copied blog version', () => {
    const model = createGoogLeNet({ numClasses: 10, inputSize: 224, width: 0.25 });
    const config = (name: string): Record<string, unknown> =>
      model.getLayer(name).getConfig() as Record<string, unknown>;
    // The aux head's 1x1 layer is a convolution with ReLU, not a max-pool.
    for (const head of ['loss1', 'loss2']) {
      expect(model.getLayer(`${head}/conv`).getClassName()).toBe('Conv2D');
      expect(config(`${head}/conv`)['activation']).toBe('relu');
      expect(config(`${head}/drop_fc`)['rate']).toBe(0.7);
      expect(config(`${head}/fc`)['activation']).toBe('relu');
    }
    expect(config('pool5/drop_7x7_s1')['rate']).toBe(0.4);
    // ReLU after every convolution, including the stem's 1x1.
    const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
    expect(convs.length).toBe(3 + 9 * 6 + 2);
    for (const conv of convs) expect(conv.getConfig()['activation'], conv.name).toBe('relu');
    // 4c has its own widths, not 4b's.
    expect(config('inception4b/3x3')['filters']).toBe(56); // 224 / 4
    expect(config('inception4c/3x3')['filters']).toBe(64); // 256 / 4
    // The aux heads exist without any "training mode" at construction time.
    expect(model.outputs).toHaveLength(3);
    model.dispose();
  });

  it('names every layer in BVLC style', () => {
    const model = createGoogLeNet({ numClasses: 10, inputSize: 32, width: 0.25 });
    const names = model.layers.map((l) => l.name);
    for (const block of Object.keys(TABLE_1)) {
      for (const branch of [
        '1x1',
        '3x3_reduce',
        '3x3',
        '5x5_reduce',
        '5x5',
        'pool',
        'pool_proj',
        'output',
      ]) {
        expect(names).toContain(`inception${block}/${branch}`);
      }
    }
    for (const name of [
      'conv1/7x7_s2',
      'pool1/3x3_s2',
      'conv2/3x3_reduce',
      'conv2/3x3',
      'pool2/3x3_s2',
      'pool3/3x3_s2',
      'pool4/3x3_s2',
      'pool5/7x7_s1',
      'loss3/classifier',
      'loss1/classifier',
      'loss2/classifier',
    ]) {
      expect(names).toContain(name);
    }
    model.dispose();
  });

  it('pools the aux heads 5x5/3 at 224 and adaptively to 4x4 where that does not fit', () => {
    const big = createGoogLeNet({ numClasses: 10, inputSize: 224, width: 0.25 });
    const small = createGoogLeNet({ numClasses: 10, inputSize: 32, width: 0.25 });
    expect(big.getLayer('loss1/ave_pool').getClassName()).toBe('AveragePooling2D');
    expect(big.getLayer('loss1/ave_pool').outputShape).toEqual([null, 4, 4, 128]);
    expect(small.getLayer('loss1/ave_pool').getClassName()).toBe('AdaptiveAveragePooling2D');
    expect(small.getLayer('loss1/ave_pool').outputShape).toEqual([null, 4, 4, 128]);
    // Same parameter count at any input size: the aux fc always sees 4x4x128.
    expect(big.countParams()).toBe(small.countParams());
    big.dispose();
    small.dispose();
  });

  it('adaptive average pooling averages the same bins as PyTorch adaptive_avg_pool2d', () => {
    tf.tidy(() => {
      // 1x5x3x1 map into 2x2 bins: rows [0,3) and [2,5); columns [0,2) and [1,3).
      const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
      const x = tf.tensor4d(values, [1, 5, 3, 1]);
      const y = new AdaptiveAveragePooling2D({ outputSize: 2 }).apply(x) as tf.Tensor;
      const mean = (rows: number[], cols: number[]): number => {
        const picked = rows.flatMap((r) => cols.map((c) => values[r * 3 + c]!));
        return picked.reduce((a, b) => a + b, 0) / picked.length;
      };
      const expected = [
        mean([0, 1, 2], [0, 1]),
        mean([0, 1, 2], [1, 2]),
        mean([2, 3, 4], [0, 1]),
        mean([2, 3, 4], [1, 2]),
      ];
      const actual = Array.from(y.dataSync());
      expect(y.shape).toEqual([1, 2, 2, 1]);
      actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    });
  });

  it('offers batch norm and the paper LRN as options', () => {
    const bn = createGoogLeNet({
      numClasses: 1000,
      inputSize: 224,
      auxLogits: false,
      norm: 'batchnorm',
    });
    const lrn = createGoogLeNet({
      numClasses: 1000,
      inputSize: 224,
      auxLogits: false,
      norm: 'lrn',
    });
    expect(bn.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(true);
    expect(
      lrn.layers
        .filter((l) => l.getClassName() === 'LocalResponseNormalization')
        .map((l) => l.name),
    ).toEqual(['pool1/norm1', 'conv2/norm2']);
    expect(summarizeModel(lrn).params).toBe(6_998_552); // LRN has no weights
    tf.tidy(() => {
      const y = predictLogits(lrn, tf.ones([1, 224, 224, 3]) as tf.Tensor4D);
      expect(y.shape).toEqual([1, 1000]);
      expect(Number.isFinite(y.dataSync()[0])).toBe(true);
    });
    bn.dispose();
    lrn.dispose();
  });

  it('rejects an invalid config with a message naming the field', () => {
    expect(() => createGoogLeNet({ numClasses: 10, inputSize: 16 })).toThrow(/inputSize/);
    expect(() => createGoogLeNet({ numClasses: 10, channels: 2 as 1 })).toThrow(/channels/);
  });
});
