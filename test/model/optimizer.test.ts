import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { learningRateAt } from '../../src/model/lr-schedule.js';
import { lrScheduleSchema } from '../../src/spec/lr-schedule-spec.js';
import { Optimizer } from '../../src/model/optimizer.js';
import { useBackend } from '../helpers/backends.js';

beforeAll(async () => {
  await useBackend('cpu');
});

/** Runs `steps` updates of a one-element variable named like a kernel, with the given gradients. */
function run(
  config: ConstructorParameters<typeof Optimizer>[0],
  grads: number[],
  name = 'layer/kernel',
  start = 1,
): number[] {
  const v = tf.variable(tf.scalar(start), true, `${name}_${Math.random().toString(36).slice(2)}`);
  // Give the variable the layer-style name the decay rule looks at.
  Object.defineProperty(v, 'name', { value: name });
  const optimizer = new Optimizer(config);
  const trace: number[] = [];
  for (const g of grads) {
    const grad = tf.scalar(g);
    optimizer.apply([v], { [name]: grad }, config.learningRate);
    grad.dispose();
    trace.push(v.dataSync()[0]!);
  }
  optimizer.dispose();
  v.dispose();
  return trace;
}

describe('optimizers', () => {
  it('SGD with momentum follows buf = m*buf + g; w -= lr*buf', () => {
    const trace = run({ type: 'sgd', learningRate: 0.1, momentum: 0.9 }, [1, 1]);
    expect(trace[0]).toBeCloseTo(1 - 0.1 * 1, 6);
    expect(trace[1]).toBeCloseTo(1 - 0.1 - 0.1 * 1.9, 6);
  });

  it('Nesterov steps by g + m*buf', () => {
    const trace = run({ type: 'sgd', learningRate: 0.1, momentum: 0.9, nesterov: true }, [1, 1]);
    expect(trace[0]).toBeCloseTo(1 - 0.1 * 1.9, 6);
    expect(trace[1]).toBeCloseTo(1 - 0.19 - 0.1 * (1 + 0.9 * 1.9), 6);
  });

  it('Adam applies bias-corrected moments', () => {
    const trace = run({ type: 'adam', learningRate: 0.01 }, [0.5, -0.25]);
    // Step 1: mHat = g, vHat = g², so the step is lr * sign(g) (up to epsilon).
    expect(trace[0]).toBeCloseTo(1 - 0.01, 6);
    const m = 0.9 * 0.1 * 0.5 + 0.1 * -0.25;
    const v = 0.999 * 0.001 * 0.25 + 0.001 * 0.0625;
    const step = m / (1 - 0.9 ** 2) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
    expect(trace[1]).toBeCloseTo(1 - 0.01 - 0.01 * step, 6);
  });

  it('decays kernels but not biases', () => {
    const kernel = run(
      { type: 'sgd', learningRate: 0.1, momentum: 0, weightDecay: 0.5 },
      [0],
      'conv/kernel',
    );
    const bias = run(
      { type: 'sgd', learningRate: 0.1, momentum: 0, weightDecay: 0.5 },
      [0],
      'conv/bias',
    );
    expect(kernel[0]).toBeCloseTo(1 - 0.1 * 0.5, 6);
    expect(bias[0]).toBe(1);
  });

  it('rejects a bad config naming the field', () => {
    expect(() => new Optimizer({ type: 'sgd', learningRate: -1 })).toThrow(/learningRate/);
    expect(() => new Optimizer({ type: 'sgd', learningRate: 0.1, momentum: 2 })).toThrow(
      /momentum/,
    );
  });
});

describe('learning-rate schedules', () => {
  const ctx = { baseLearningRate: 0.1, stepsPerEpoch: 10, totalSteps: 1000 };

  it('step: the paper’s 4% decrease every 8 epochs', () => {
    const schedule = lrScheduleSchema.parse({ type: 'step' });
    expect(learningRateAt(schedule, 0, ctx)).toBe(0.1);
    expect(learningRateAt(schedule, 79, ctx)).toBe(0.1); // epoch 7.9
    expect(learningRateAt(schedule, 80, ctx)).toBeCloseTo(0.096, 12); // epoch 8
    expect(learningRateAt(schedule, 160, ctx)).toBeCloseTo(0.1 * 0.96 ** 2, 12);
  });

  it('cosine: from the base rate to the floor at the last step', () => {
    const schedule = lrScheduleSchema.parse({ type: 'cosine', minLearningRate: 0.001 });
    expect(learningRateAt(schedule, 0, ctx)).toBeCloseTo(0.1, 12);
    expect(learningRateAt(schedule, 999, ctx)).toBeCloseTo(0.001, 12);
    expect(learningRateAt(schedule, 500, ctx)).toBeLessThan(0.06);
    expect(learningRateAt(schedule, 500, ctx)).toBeGreaterThan(0.04);
  });

  it('linear warm-up ramps to the base rate, then the schedule takes over', () => {
    const schedule = lrScheduleSchema.parse({ type: 'constant', warmupSteps: 4 });
    const rates = [0, 1, 2, 3, 4, 100].map((s) => learningRateAt(schedule, s, ctx));
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.1].forEach((rate, i) =>
      expect(rates[i]).toBeCloseTo(rate, 12),
    );
  });
});
