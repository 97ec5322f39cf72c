import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGoogLeNet } from '../../src/model/googlenet.js';
import {
  ExportError,
  exportLayersModel,
  type ExportMetadata,
} from '../../src/model/layers-model-export.js';
import { mainHeadModel } from '../../src/model/main-head-model.js';
import { useBackend } from '../helpers/backends.js';
import { TINY } from '../helpers/tiny-training.js';

const metadata: ExportMetadata = {
  labels: ['a', 'b', 'c', 'd'],
  inputSize: 32,
  channels: 3,
  colorSpace: 'rgb',
  normalization: { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] },
  output: 'logits',
  source: { runId: 'r', checkpointStep: 1 },
};

beforeAll(async () => {
  await useBackend('cpu');
});

describe('Layers model export', () => {
  it('exports the main head with the trained weights and gives the same logits as the trained model', async () => {
    const trained = createGoogLeNet({ ...TINY, seed: 4 });
    const head = mainHeadModel(trained, { ...TINY, seed: 9 });
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 1);
    const outputs = trained.predict(x) as tf.Tensor[]; // [main, aux1, aux2]
    const expected = outputs[0] as tf.Tensor;
    const got = head.predict(x) as tf.Tensor;
    expect(Array.from(got.dataSync())).toEqual(Array.from(expected.dataSync()));
    const { modelJson, weights } = await exportLayersModel(head, metadata);
    expect(weights.byteLength).toBe(
      head.weights.reduce((n, w) => n + 4 * w.shape.reduce((a: number, d) => a * (d ?? 1), 1), 0),
    );
    expect(modelJson.userDefinedMetadata).toEqual(metadata);
    tf.dispose([x, ...outputs, got]);
    trained.dispose();
    head.dispose();
  });

  it("refuses a model with LRN layers (norm: 'lrn'): plain tfjs has no such layer class", async () => {
    const config = { ...TINY, norm: 'lrn' as const };
    const head = mainHeadModel(createGoogLeNet(config), config);
    await expect(exportLayersModel(head, metadata)).rejects.toBeInstanceOf(ExportError);
    await expect(exportLayersModel(head, metadata)).rejects.toThrow(/LocalResponseNormalization/);
  });
});
