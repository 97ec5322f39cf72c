/**
 * SGD (momentum, Nesterov) and Adam with coupled weight decay, written here rather than using
 * tf.train.* so that (1) the learning rate can change every step (tfjs' MomentumOptimizer bakes
 * it into a constant), (2) the slot state is named per variable and can be checkpointed and
 * restored exactly, and (3) the update order is fixed, which bitwise determinism needs.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  optimizerConfigSchema,
  type OptimizerConfig,
  type OptimizerConfigInput,
} from '../spec/optimizer-config.js';

export {
  optimizerConfigSchema,
  type OptimizerConfig,
  type OptimizerConfigInput,
} from '../spec/optimizer-config.js';

/** Optimizer state, keyed by variable name, ready to be checkpointed. */
export interface OptimizerState {
  /** Updates applied so far (Adam's bias correction uses it). */
  iterations: number;
  /** Slot name (`<variable>/momentum`, `<variable>/m`, `<variable>/v`) to its tensor. */
  slots: Map<string, tf.Tensor>;
}

/** Variables that take weight decay: convolution and dense kernels. */
function decays(variable: tf.Variable): boolean {
  return variable.name.endsWith('/kernel') || /\/kernel_\d+$/.test(variable.name);
}

export class Optimizer {
  readonly config: OptimizerConfig;
  private iterations = 0;
  private readonly slots = new Map<string, tf.Variable>();

  constructor(config: OptimizerConfigInput) {
    this.config = optimizerConfigSchema.parse(config);
  }

  /** Slot variable, created as zeros the first time it is asked for. */
  private slot(variable: tf.Variable, kind: string): tf.Variable {
    const key = `${variable.name}/${kind}`;
    let slot = this.slots.get(key);
    if (!slot) {
      slot = tf.variable(tf.zerosLike(variable), false);
      this.slots.set(key, slot);
    }
    return slot;
  }

  /** Applies one update; `grads` is keyed by variable name (as tf.variableGrads returns). */
  apply(variables: tf.Variable[], grads: tf.NamedTensorMap, learningRate: number): void {
    this.iterations += 1;
    const c = this.config;
    const t = this.iterations;
    tf.tidy(() => {
      const lr = tf.scalar(learningRate);
      for (const variable of variables) {
        const raw = grads[variable.name];
        if (!raw) continue; // a variable that did not take part in this loss (none in GoogLeNet)
        const g =
          c.weightDecay > 0 && decays(variable)
            ? tf.add(raw, tf.mul(variable, c.weightDecay))
            : raw;
        if (c.type === 'sgd') {
          if (c.momentum === 0) {
            variable.assign(tf.sub(variable, tf.mul(lr, g)));
            continue;
          }
          const buf = this.slot(variable, 'momentum');
          // PyTorch's form: buf = m*buf + g; step = g + m*buf (Nesterov) or buf.
          const next = tf.add(tf.mul(buf, c.momentum), g);
          buf.assign(next);
          const step = c.nesterov ? tf.add(g, tf.mul(next, c.momentum)) : next;
          variable.assign(tf.sub(variable, tf.mul(lr, step)));
        } else {
          const m = this.slot(variable, 'm');
          const v = this.slot(variable, 'v');
          const mNext = tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1));
          const vNext = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
          m.assign(mNext);
          v.assign(vNext);
          const mHat = tf.div(mNext, 1 - c.beta1 ** t);
          const vHat = tf.div(vNext, 1 - c.beta2 ** t);
          variable.assign(
            tf.sub(variable, tf.mul(lr, tf.div(mHat, tf.add(tf.sqrt(vHat), c.epsilon)))),
          );
        }
      }
    });
  }

  /** The live state (tensors are the optimizer's own; read, do not dispose). */
  getState(): OptimizerState {
    return { iterations: this.iterations, slots: new Map(this.slots) };
  }

  /** Replaces the state with copies of the given tensors (e.g. loaded from a checkpoint). */
  setState(state: OptimizerState): void {
    this.dispose();
    this.iterations = state.iterations;
    for (const [key, value] of state.slots) this.slots.set(key, tf.variable(value, false));
  }

  dispose(): void {
    for (const slot of this.slots.values()) slot.dispose();
    this.slots.clear();
  }
}
