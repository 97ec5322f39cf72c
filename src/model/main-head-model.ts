/**
 * The inference half of a trained GoogLeNet as a model of its own: the same config without the
 * auxiliary heads, holding copies of the trained main-head weights. Exports and prediction use
 * it, so neither carries the aux heads' weights (or their AdaptiveAveragePooling2D layers).
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { createGoogLeNet } from './googlenet.js';
import type { GoogLeNetConfigInput } from '../spec/googlenet-config.js';
import { variableOf } from './layer-variables.js';

/** A new main-head-only model with `trained`'s weights (copied; `trained` may be disposed). */
export function mainHeadModel(
  trained: tfl.LayersModel,
  config: GoogLeNetConfigInput,
): tfl.LayersModel {
  const model = createGoogLeNet({ ...config, auxLogits: false });
  const source = new Map(trained.weights.map((w) => [w.originalName, variableOf(w)]));
  for (const weight of model.weights) {
    const from = source.get(weight.originalName);
    if (!from) throw new Error(`trained model has no weight ${weight.originalName}`);
    // assign shares the tensor data by reference count: disposing `trained` later is safe.
    variableOf(weight).assign(from);
  }
  return model;
}
