/**
 * GoogLeNet (Inception v1) — Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, Table 1.
 *
 * The graph follows the paper and the BVLC Caffe reference model it was released with:
 * ReLU after every convolution, auxiliary classifiers after 4a and 4d (training only, loss
 * weight 0.3 — see train-step.ts), dropout 0.4 before the main classifier and 0.7 in the aux
 * heads. Layer names are BVLC's (`inception4a/3x3_reduce`), so the file reads like the table.
 *
 * Deviations, all opt-in or forced by generality:
 * - `norm: 'batchnorm'` puts batch norm between each conv and its ReLU (as torchvision does);
 *   `norm: 'lrn'` adds the paper's two LRN layers after the stem's first pool and 3x3 conv.
 * - `width` multiplies every layer's channel count (quarter-width networks for tests).
 * - The aux heads' 5x5/3 average pool turns 14x14 into 4x4; for input sizes where the 4a map is
 *   not 14..16 wide it becomes an adaptive pool to the same 4x4 (AdaptiveAveragePooling2D).
 * - Max pools use 'same' padding, which gives the sizes of Caffe's ceil-mode pools.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AdaptiveAveragePooling2D } from './layers/adaptive-average-pooling-2d.js';
import { LocalResponseNormalization } from './layers/local-response-normalization.js';
import {
  parseGoogLeNetConfig,
  type GoogLeNetConfig,
  type GoogLeNetConfigInput,
} from '../spec/googlenet-config.js';

/** One row of Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj. */
export interface InceptionWidths {
  readonly b1x1: number;
  readonly b3x3Reduce: number;
  readonly b3x3: number;
  readonly b5x5Reduce: number;
  readonly b5x5: number;
  readonly poolProj: number;
}

function row(...w: [number, number, number, number, number, number]): InceptionWidths {
  return { b1x1: w[0], b3x3Reduce: w[1], b3x3: w[2], b5x5Reduce: w[3], b5x5: w[4], poolProj: w[5] };
}

/** Table 1 of the paper. */
export const INCEPTION_TABLE = {
  '3a': row(64, 96, 128, 16, 32, 32),
  '3b': row(128, 128, 192, 32, 96, 64),
  '4a': row(192, 96, 208, 16, 48, 64),
  '4b': row(160, 112, 224, 24, 64, 64),
  '4c': row(128, 128, 256, 24, 64, 64),
  '4d': row(112, 144, 288, 32, 64, 64),
  '4e': row(256, 160, 320, 32, 128, 128),
  '5a': row(256, 160, 320, 32, 128, 128),
  '5b': row(384, 192, 384, 48, 128, 128),
} as const satisfies Record<string, InceptionWidths>;

export type InceptionName = keyof typeof INCEPTION_TABLE;

/** Names of the model's outputs, in order. Aux outputs exist only when `auxLogits` is on. */
export const MAIN_OUTPUT = 'loss3/classifier';
export const AUX_OUTPUTS = ['loss1/classifier', 'loss2/classifier'] as const;

type SymbolicTensor = tfl.SymbolicTensor;

/** Builds layers with the config's width, norm and a per-layer seed. */
class GraphBuilder {
  private seedCounter: number;

  constructor(private readonly config: GoogLeNetConfig) {
    this.seedCounter = config.seed * 1000;
  }

  /** Scales a paper width by the channel multiplier. */
  channels(paperWidth: number): number {
    return Math.max(1, Math.round(paperWidth * this.config.width));
  }

  private nextSeed(): number {
    this.seedCounter += 1;
    return this.seedCounter;
  }

  /** Convolution followed by ReLU (and batch norm between them when configured). */
  conv(
    x: SymbolicTensor,
    name: string,
    paperFilters: number,
    kernelSize: number,
    strides = 1,
  ): SymbolicTensor {
    const batchNorm = this.config.norm === 'batchnorm';
    const y = tfl.layers
      .conv2d({
        name,
        filters: this.channels(paperFilters),
        kernelSize,
        strides,
        padding: 'same',
        useBias: !batchNorm,
        activation: batchNorm ? 'linear' : 'relu',
        kernelInitializer: tfl.initializers.heNormal({ seed: this.nextSeed() }),
        biasInitializer: 'zeros',
      })
      .apply(x) as SymbolicTensor;
    if (!batchNorm) return y;
    const normed = tfl.layers
      .batchNormalization({ name: `${name}/bn`, epsilon: 1e-3, momentum: 0.9 })
      .apply(y) as SymbolicTensor;
    return tfl.layers
      .activation({ name: `${name}/relu`, activation: 'relu' })
      .apply(normed) as SymbolicTensor;
  }

  dense(
    x: SymbolicTensor,
    name: string,
    units: number,
    activation: 'relu' | 'linear',
  ): SymbolicTensor {
    return tfl.layers
      .dense({
        name,
        units,
        activation,
        kernelInitializer:
          activation === 'relu'
            ? tfl.initializers.heNormal({ seed: this.nextSeed() })
            : tfl.initializers.glorotUniform({ seed: this.nextSeed() }),
        biasInitializer: 'zeros',
      })
      .apply(x) as SymbolicTensor;
  }

  maxPool(x: SymbolicTensor, name: string, strides: number): SymbolicTensor {
    return tfl.layers
      .maxPooling2d({ name, poolSize: 3, strides, padding: 'same' })
      .apply(x) as SymbolicTensor;
  }

  dropout(x: SymbolicTensor, name: string, rate: number): SymbolicTensor {
    // The training step sets a fresh seed on every Dropout layer before each step
    // (see setDropoutSeeds), so masks differ per step yet replay exactly on resume.
    return tfl.layers.dropout({ name, rate, seed: this.nextSeed() }).apply(x) as SymbolicTensor;
  }

  lrn(x: SymbolicTensor, name: string): SymbolicTensor {
    if (this.config.norm !== 'lrn') return x;
    return new LocalResponseNormalization({ name }).apply(x) as SymbolicTensor;
  }

  /** Four parallel branches concatenated on channels; widths from Table 1. */
  inception(x: SymbolicTensor, block: InceptionName): SymbolicTensor {
    const w = INCEPTION_TABLE[block];
    const p = `inception${block}`;
    const b1 = this.conv(x, `${p}/1x1`, w.b1x1, 1);
    const b2 = this.conv(this.conv(x, `${p}/3x3_reduce`, w.b3x3Reduce, 1), `${p}/3x3`, w.b3x3, 3);
    const b3 = this.conv(this.conv(x, `${p}/5x5_reduce`, w.b5x5Reduce, 1), `${p}/5x5`, w.b5x5, 5);
    const b4 = this.conv(this.maxPool(x, `${p}/pool`, 1), `${p}/pool_proj`, w.poolProj, 1);
    return tfl.layers
      .concatenate({ name: `${p}/output`, axis: -1 })
      .apply([b1, b2, b3, b4]) as SymbolicTensor;
  }

  /**
   * Auxiliary classifier: avgpool 5x5/3 -> conv 1x1 (128) + ReLU -> fc 1024 + ReLU ->
   * dropout 0.7 -> linear. `loss` is `loss1` (after 4a) or `loss2` (after 4d).
   */
  auxHead(x: SymbolicTensor, loss: 'loss1' | 'loss2'): SymbolicTensor {
    const side = x.shape[1] as number;
    const paperPoolFits = Math.floor((side - 5) / 3) + 1 === 4;
    const pooled = paperPoolFits
      ? (tfl.layers
          .averagePooling2d({ name: `${loss}/ave_pool`, poolSize: 5, strides: 3, padding: 'valid' })
          .apply(x) as SymbolicTensor)
      : (new AdaptiveAveragePooling2D({ name: `${loss}/ave_pool`, outputSize: 4 }).apply(
          x,
        ) as SymbolicTensor);
    const conv = this.conv(pooled, `${loss}/conv`, 128, 1); // 4x4x128
    const flat = tfl.layers.flatten({ name: `${loss}/flatten` }).apply(conv) as SymbolicTensor; // 2048
    const fc = this.dense(flat, `${loss}/fc`, this.channels(1024), 'relu');
    const dropped = this.dropout(fc, `${loss}/drop_fc`, 0.7);
    return this.dense(dropped, `${loss}/classifier`, this.config.numClasses, 'linear');
  }
}

/**
 * Creates GoogLeNet as a functional `tf.LayersModel` whose outputs are logits:
 * `[main]` or, with `auxLogits`, `[main, aux1 (after 4a), aux2 (after 4d)]`.
 * Use {@link inferenceModel} for predictions: it runs the main head only.
 */
export function createGoogLeNet(input: GoogLeNetConfigInput): tfl.LayersModel {
  const config = parseGoogLeNetConfig(input);
  const g = new GraphBuilder(config);
  const s = config.inputSize;
  const image = tfl.input({ name: 'image', shape: [s, s, config.channels] });

  // Stem                                                         224x224 input (side s)
  let x = g.conv(image, 'conv1/7x7_s2', 64, 7, 2); //            112x112x64  (s/2)
  x = g.maxPool(x, 'pool1/3x3_s2', 2); //                         56x56x64   (s/4)
  x = g.lrn(x, 'pool1/norm1');
  x = g.conv(x, 'conv2/3x3_reduce', 64, 1); //                    56x56x64
  x = g.conv(x, 'conv2/3x3', 192, 3); //                          56x56x192
  x = g.lrn(x, 'conv2/norm2');
  x = g.maxPool(x, 'pool2/3x3_s2', 2); //                         28x28x192  (s/8)

  x = g.inception(x, '3a'); //                                    28x28x256
  x = g.inception(x, '3b'); //                                    28x28x480
  x = g.maxPool(x, 'pool3/3x3_s2', 2); //                         14x14x480  (s/16)

  x = g.inception(x, '4a'); //                                    14x14x512
  const aux1 = config.auxLogits ? g.auxHead(x, 'loss1') : undefined;
  x = g.inception(x, '4b'); //                                    14x14x512
  x = g.inception(x, '4c'); //                                    14x14x512
  x = g.inception(x, '4d'); //                                    14x14x528
  const aux2 = config.auxLogits ? g.auxHead(x, 'loss2') : undefined;
  x = g.inception(x, '4e'); //                                    14x14x832
  x = g.maxPool(x, 'pool4/3x3_s2', 2); //                         7x7x832    (s/32)

  x = g.inception(x, '5a'); //                                    7x7x832
  x = g.inception(x, '5b'); //                                    7x7x1024
  x = tfl.layers.globalAveragePooling2d({ name: 'pool5/7x7_s1' }).apply(x) as SymbolicTensor; // 1024
  x = g.dropout(x, 'pool5/drop_7x7_s1', 0.4);
  const logits = g.dense(x, MAIN_OUTPUT, config.numClasses, 'linear'); //   numClasses

  const outputs = aux1 && aux2 ? [logits, aux1, aux2] : [logits];
  return tfl.model({ name: 'googlenet', inputs: image, outputs });
}

const inferenceModels = new WeakMap<tfl.LayersModel, tfl.LayersModel>();

/**
 * The main head alone, sharing the training model's weights: what eval, export and prediction
 * use, so the aux heads never run at inference.
 */
export function inferenceModel(model: tfl.LayersModel): tfl.LayersModel {
  if (model.outputs.length === 1) return model;
  let cached = inferenceModels.get(model);
  if (!cached) {
    const main = model.outputs[0];
    if (!main) throw new Error('model has no outputs');
    cached = tfl.model({ name: `${model.name}_inference`, inputs: model.inputs, outputs: main });
    inferenceModels.set(model, cached);
  }
  return cached;
}

/** Main-head logits for a batch, in inference mode (dropout off, aux heads not run). */
export function predictLogits(model: tfl.LayersModel, images: tf.Tensor4D): tf.Tensor2D {
  return inferenceModel(model).predict(images) as tf.Tensor2D;
}

/** Every Dropout layer, for the training step to seed. */
export function dropoutLayers(model: tfl.LayersModel): tfl.layers.Layer[] {
  return model.layers.filter((layer) => layer.getClassName() === 'Dropout');
}
