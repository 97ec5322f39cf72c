import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { syntheticBatch } from '../../src/data/synthetic.js';
import { createGoogLeNet, dropoutLayers, predictLogits } from '../../src/model/googlenet.js';
import { mixSeed } from '../../src/spec/seed.js';
import { createTrainer, type Trainer } from '../../src/model/train-step.js';
import { useBackend } from '../helpers/backends.js';
import { sameBytes, tinyBatch, tinyModel, weightBytes } from '../helpers/tiny-training.js';

function trainTiny(steps: number, seed = 1): { trainer: Trainer; losses: number[] } {
  const trainer = createTrainer({
    model: tinyModel(seed),
    optimizer: {
      type: 'sgd',
      learningRate: 0.05,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 1e-4,
    },
    schedule: { type: 'cosine', warmupSteps: 1 },
    stepsPerEpoch: 2,
    totalSteps: steps,
    seed,
  });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const { images, labels } = tinyBatch((i % 2) * 4);
    losses.push(trainer.trainStep(images, labels).loss);
    tf.dispose([images, labels]);
  }
  return { trainer, losses };
}

beforeAll(async () => {
  await useBackend('wasm');
});

describe('training step', () => {
  it('leaks no tensors: numTensors is unchanged across a step once optimizer slots exist', () => {
    const baseline = tf.memory().numTensors;
    const { images, labels } = tinyBatch(0);
    const trainer = createTrainer({
      model: tinyModel(),
      optimizer: { type: 'adam', learningRate: 1e-3, weightDecay: 1e-4 },
      stepsPerEpoch: 1,
      totalSteps: 3,
    });
    const variables = trainer.model.trainableWeights.length;
    const before = tf.memory().numTensors;
    trainer.trainStep(images, labels);
    // The first step creates exactly Adam's two slots per variable, nothing else.
    expect(tf.memory().numTensors - before).toBe(2 * variables);
    const steady = tf.memory().numTensors;
    // The backend's own buffers too: our wasm kernels allocate intermediates outside the engine.
    const buffers = tf.engine().backend.numDataIds();
    trainer.trainStep(images, labels);
    trainer.trainStep(images, labels);
    expect(tf.memory().numTensors).toBe(steady);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    trainer.dispose();
    trainer.model.dispose();
    tf.dispose([images, labels]);
    // Disposing the model, trainer and batch returns to where we started.
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('computes loss = CE(main) + 0.3 * (CE(aux1) + CE(aux2)) with the step’s dropout masks', () => {
    const { images, labels } = tinyBatch(0);
    const model = tinyModel(5);
    const seed = 11;
    // Reproduce step 0's forward pass by hand with the same dropout seeds, before the update.
    dropoutLayers(model).forEach((layer, index) => {
      (layer as unknown as { seed: number }).seed = mixSeed(seed, 0, index);
    });
    const expected = tf.tidy(() => {
      const [main, aux1, aux2] = model.apply(images, { training: true }) as tf.Tensor[];
      const oneHot = tf.oneHot(labels, 4);
      const ce = (t: tf.Tensor): number => tf.losses.softmaxCrossEntropy(oneHot, t).dataSync()[0]!;
      return { total: ce(main!) + 0.3 * (ce(aux1!) + ce(aux2!)), main: ce(main!) };
    });
    const trainer = createTrainer({
      model,
      optimizer: { type: 'sgd', learningRate: 0.01 },
      stepsPerEpoch: 1,
      totalSteps: 1,
      seed,
    });
    const result = trainer.trainStep(images, labels);
    expect(result.loss).toBeCloseTo(expected.total, 5);
    expect(result.mainLoss).toBeCloseTo(expected.main, 5);
    expect(result.loss).toBeGreaterThan(result.mainLoss);
    expect(result.accuracy).toBeGreaterThanOrEqual(0);
    expect(result.accuracy).toBeLessThanOrEqual(1);
    trainer.dispose();
    model.dispose();
    tf.dispose([images, labels]);
  });

  for (const backend of ['wasm', 'cpu'] as const) {
    it(`is deterministic on ${backend}: same seed and data give bitwise-identical weights after 3 steps`, async () => {
      await useBackend(backend);
      const a = trainTiny(3);
      const b = trainTiny(3);
      const c = trainTiny(3, 2); // another seed must differ, or the comparison proves nothing
      const wa = weightBytes(a.trainer.model);
      const wb = weightBytes(b.trainer.model);
      const wc = weightBytes(c.trainer.model);
      expect(wa.size).toBe(a.trainer.model.weights.length);
      for (const [name, bytes] of wa) expect(sameBytes(bytes, wb.get(name)!), name).toBe(true);
      expect([...wa].some(([name, bytes]) => !sameBytes(bytes, wc.get(name)!))).toBe(true);
      expect(a.losses).toEqual(b.losses);
      for (const run of [a, b, c]) {
        run.trainer.dispose();
        run.trainer.model.dispose();
      }
      await useBackend('wasm');
    });
  }

  it('learns: a quarter-width network reaches >= 90% training accuracy on generated data within 60 s', () => {
    const classes = 10;
    const size = 320;
    const batch = 32;
    const data = syntheticBatch(
      { numClasses: classes, size, seed: 7, inputSize: 32, channels: 3 },
      0,
      size,
    );
    const images = tf.tensor4d(data.images, [size, 32, 32, 3]);
    const labels = tf.tensor1d(data.labels, 'int32');
    const model = createGoogLeNet({ numClasses: classes, inputSize: 32, width: 0.25, seed: 1 });
    const trainer = createTrainer({
      model,
      optimizer: { type: 'adam', learningRate: 2e-3 },
      stepsPerEpoch: size / batch,
      totalSteps: 1000,
      seed: 1,
    });
    const accuracy = (): number =>
      tf.tidy(
        () =>
          tf
            .mean(tf.cast(tf.equal(tf.argMax(predictLogits(model, images), 1), labels), 'float32'))
            .dataSync()[0]!,
      );
    const initial = accuracy();
    const start = Date.now();
    let reached = initial;
    while (Date.now() - start < 60_000 && reached < 0.9) {
      for (let i = 0; i < size / batch; i++) {
        const x = tf.slice(images, [i * batch, 0, 0, 0], [batch, -1, -1, -1]) as tf.Tensor4D;
        const y = tf.slice(labels, [i * batch], [batch]) as tf.Tensor1D;
        trainer.trainStep(x, y);
        tf.dispose([x, y]);
      }
      reached = accuracy();
    }
    expect(initial).toBeLessThan(0.5); // it had something to learn
    expect(reached).toBeGreaterThanOrEqual(0.9);
    trainer.dispose();
    model.dispose();
    tf.dispose([images, labels]);
  });
});
