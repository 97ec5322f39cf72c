/**
 * One optimisation step of GoogLeNet: loss = CE(main) + 0.3 * (CE(aux1) + CE(aux2)) — the paper's
 * aux weighting, training only — then an optimizer update at the scheduled learning rate.
 *
 * Determinism: dropout masks are seeded from (run seed, step, layer), so the same seed and data
 * give the same weights bit for bit on the cpu and wasm backends, and a resumed run replays the
 * same masks it would have drawn uninterrupted.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { dropoutLayers } from './googlenet.js';
import { trainableVariables } from './layer-variables.js';
import { learningRateAt } from './lr-schedule.js';
import { lrScheduleSchema, type LrScheduleInput } from '../spec/lr-schedule-spec.js';
import { Optimizer, type OptimizerConfigInput, type OptimizerState } from './optimizer.js';
import { mixSeed } from '../spec/seed.js';
import { topKHits } from './top-k-hits.js';

/** The paper's weight on each auxiliary classifier's loss. */
export const AUX_LOSS_WEIGHT = 0.3;

export interface TrainerOptions {
  model: tfl.LayersModel;
  optimizer: OptimizerConfigInput;
  /** @defaultValue `{ type: 'constant' }` */
  schedule?: LrScheduleInput;
  /** Batches per epoch (step schedules count epochs). */
  stepsPerEpoch: number;
  /** Steps in the whole run (cosine needs the end). */
  totalSteps: number;
  /** Seeds dropout. @defaultValue 0 */
  seed?: number;
  /** @defaultValue {@link AUX_LOSS_WEIGHT} */
  auxLossWeight?: number;
}

export interface StepResult {
  /** 0-based index of the step just taken. */
  step: number;
  /** Total training loss (main + weighted aux). */
  loss: number;
  /** Cross-entropy of the main head alone. */
  mainLoss: number;
  /** Top-1 accuracy of the main head on this batch, 0..1. */
  accuracy: number;
  /** Top-5 accuracy of the main head on this batch, 0..1. */
  top5: number;
  learningRate: number;
}

export class Trainer {
  readonly model: tfl.LayersModel;
  readonly optimizer: Optimizer;
  private readonly options: TrainerOptions;
  private readonly schedule;
  private readonly dropouts: tfl.layers.Layer[];
  private readonly variables: tf.Variable[];
  private readonly numClasses: number;
  private nextStep = 0;

  constructor(options: TrainerOptions) {
    this.options = options;
    this.model = options.model;
    this.optimizer = new Optimizer(options.optimizer);
    this.schedule = lrScheduleSchema.parse(options.schedule ?? { type: 'constant' });
    this.dropouts = dropoutLayers(options.model);
    this.variables = trainableVariables(options.model);
    this.numClasses = options.model.outputs[0]?.shape[1] as number;
  }

  /** Index of the next step to take (= steps taken so far). */
  get step(): number {
    return this.nextStep;
  }

  learningRate(step: number): number {
    return learningRateAt(this.schedule, step, {
      baseLearningRate: this.optimizer.config.learningRate,
      stepsPerEpoch: this.options.stepsPerEpoch,
      totalSteps: this.options.totalSteps,
    });
  }

  /** One update on a batch. `labels` are class indices (int32). */
  trainStep(images: tf.Tensor4D, labels: tf.Tensor1D): StepResult {
    const step = this.nextStep;
    const learningRate = this.learningRate(step);
    const seed = this.options.seed ?? 0;
    this.dropouts.forEach((layer, index) => {
      // tfjs' Dropout reads `seed` on every call; without one it would use Math.random.
      (layer as unknown as { seed: number }).seed = mixSeed(seed, step, index);
    });
    const auxWeight = this.options.auxLossWeight ?? AUX_LOSS_WEIGHT;
    const { numClasses, variables } = this;

    let mainLoss: tf.Scalar | undefined;
    let correct: tf.Scalar | undefined;
    let correct5: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const outputs = this.model.apply(images, { training: true }) as tf.Tensor | tf.Tensor[];
      const [main, ...aux] = Array.isArray(outputs) ? outputs : [outputs];
      const oneHot = tf.oneHot(labels, numClasses);
      const ce = (logits: tf.Tensor): tf.Scalar =>
        tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
      const mainCe = ce(main as tf.Tensor);
      mainLoss = tf.keep(mainCe);
      correct = tf.keep(
        tf.sum(tf.cast(tf.equal(tf.argMax(main as tf.Tensor, 1), labels), 'float32')) as tf.Scalar,
      );
      correct5 = tf.keep(topKHits(main as tf.Tensor2D, labels, 5));
      return aux.reduce<tf.Scalar>(
        (total, logits) => tf.add(total, tf.mul(ce(logits), auxWeight)) as tf.Scalar,
        mainCe,
      );
    }, variables);

    this.optimizer.apply(variables, grads, learningRate);
    const [loss, main, hits, hits5] = [
      value.dataSync()[0],
      mainLoss?.dataSync()[0],
      correct?.dataSync()[0],
      correct5?.dataSync()[0],
    ];
    tf.dispose([value, mainLoss, correct, correct5, ...Object.values(grads)]);
    this.nextStep = step + 1;
    return {
      step,
      loss: loss ?? Number.NaN,
      mainLoss: main ?? Number.NaN,
      accuracy: (hits ?? 0) / images.shape[0],
      top5: (hits5 ?? 0) / images.shape[0],
      learningRate,
    };
  }

  /**
   * Restores the step counter and optimizer state from a checkpoint (loadCheckpoint maps slot
   * keys onto this model's variable names). Refuses slots for variables this model does not
   * have: silently starting them from zero would make the run drift without any error.
   */
  restore(step: number, optimizerState: OptimizerState): void {
    const names = new Set(this.variables.map((v) => v.name));
    for (const key of optimizerState.slots.keys()) {
      const variable = key.slice(0, key.lastIndexOf('/'));
      if (!names.has(variable)) {
        throw new Error(
          `optimizer state has a slot for '${variable}', which this model does not have`,
        );
      }
    }
    this.nextStep = step;
    this.optimizer.setState(optimizerState);
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

export function createTrainer(options: TrainerOptions): Trainer {
  return new Trainer(options);
}
