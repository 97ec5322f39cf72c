/**
 * GoogLeNet's size without building it: the parameter count and the floats one image's forward
 * pass produces, walked layer by layer over the same graph as googlenet.ts (Table 1, the same
 * widths, paddings and heads). Building a width-4, 512-pixel network just to count it would
 * allocate the gigabytes the count is meant to warn about, so the API counts here instead; a
 * test holds the count equal to `model.countParams()` of the built network.
 */
import { parseGoogLeNetConfig, type GoogLeNetConfigInput } from '../spec/googlenet-config.js';
import { INCEPTION_TABLE, type InceptionName } from './googlenet.js';

export interface GoogLeNetSize {
  /** Every weight, trainable or not (batch norm's moving statistics included). */
  parameters: number;
  /** Weights the optimizer updates (and keeps slots for). */
  trainableParameters: number;
  /**
   * Floats the layers output for one image in a training forward pass (every layer's output,
   * the aux heads included when built): what the gradient tape keeps until the backward pass.
   */
  activationsPerImage: number;
}

/** A feature map: its side and channel count. */
interface Map {
  side: number;
  channels: number;
}

/** Accumulates the count while the walk follows the graph. */
class SizeWalker {
  parameters = 0;
  trainable = 0;
  activations = 0;

  constructor(private readonly config: ReturnType<typeof parseGoogLeNetConfig>) {}

  private channels(paperWidth: number): number {
    return Math.max(1, Math.round(paperWidth * this.config.width));
  }

  private output(side: number, channels: number): Map {
    this.activations += side * side * channels;
    return { side, channels };
  }

  conv(x: Map, paperFilters: number, kernel: number, strides = 1): Map {
    const filters = this.channels(paperFilters);
    const batchNorm = this.config.norm === 'batchnorm';
    const weights = kernel * kernel * x.channels * filters + (batchNorm ? 0 : filters);
    this.parameters += weights;
    this.trainable += weights;
    const side = Math.ceil(x.side / strides);
    if (batchNorm) {
      // gamma and beta are trained; the moving mean and variance are not.
      this.parameters += 4 * filters;
      this.trainable += 2 * filters;
      this.output(side, filters); // conv
      this.output(side, filters); // batch norm
    } else this.output(side, filters); // conv (its bias and ReLU fused)
    return this.output(side, filters); // ReLU
  }

  dense(inputs: number, units: number): number {
    this.parameters += inputs * units + units;
    this.trainable += inputs * units + units;
    this.activations += units;
    return units;
  }

  maxPool(x: Map, strides: number): Map {
    return this.output(Math.ceil(x.side / strides), x.channels);
  }

  lrn(x: Map): Map {
    return this.config.norm === 'lrn' ? this.output(x.side, x.channels) : x;
  }

  inception(x: Map, block: InceptionName): Map {
    const w = INCEPTION_TABLE[block];
    const b1 = this.conv(x, w.b1x1, 1);
    const b2 = this.conv(this.conv(x, w.b3x3Reduce, 1), w.b3x3, 3);
    const b3 = this.conv(this.conv(x, w.b5x5Reduce, 1), w.b5x5, 5);
    const b4 = this.conv(this.maxPool(x, 1), w.poolProj, 1);
    return this.output(x.side, b1.channels + b2.channels + b3.channels + b4.channels);
  }

  auxHead(x: Map): void {
    const pooled = this.output(4, x.channels);
    const conv = this.conv(pooled, 128, 1);
    const fc = this.dense(conv.side * conv.side * conv.channels, this.channels(1024));
    this.activations += fc; // dropout
    this.dense(fc, this.config.numClasses);
  }
}

/** The size of the GoogLeNet `input` describes (the same config createGoogLeNet takes). */
export function googLeNetSize(input: GoogLeNetConfigInput): GoogLeNetSize {
  const config = parseGoogLeNetConfig(input);
  const g = new SizeWalker(config);
  let x: Map = { side: config.inputSize, channels: config.channels };
  x = g.conv(x, 64, 7, 2);
  x = g.lrn(g.maxPool(x, 2));
  x = g.conv(x, 64, 1);
  x = g.lrn(g.conv(x, 192, 3));
  x = g.maxPool(x, 2);
  x = g.inception(g.inception(x, '3a'), '3b');
  x = g.maxPool(x, 2);
  x = g.inception(x, '4a');
  if (config.auxLogits) g.auxHead(x);
  for (const block of ['4b', '4c', '4d'] as const) x = g.inception(x, block);
  if (config.auxLogits) g.auxHead(x);
  x = g.maxPool(g.inception(x, '4e'), 2);
  x = g.inception(g.inception(x, '5a'), '5b');
  g.activations += 2 * x.channels; // global average pool, dropout
  g.dense(x.channels, config.numClasses);
  return {
    parameters: g.parameters,
    trainableParameters: g.trainable,
    activationsPerImage: g.activations,
  };
}
