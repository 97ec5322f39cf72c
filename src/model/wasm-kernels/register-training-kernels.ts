/**
 * Makes the wasm backend able to train GoogLeNet, and fast:
 * - Conv2DBackpropFilter: missing in tfjs-backend-wasm 4.22; ours runs on XNNPACK.
 * - Conv2DBackpropInput: the stock one is a scalar loop; ours runs on XNNPACK.
 * - BatchMatMul: the stock transposed cases are scalar loops; ours keeps them on XNNPACK.
 * - MaxPoolGrad: the stock one rescans every window per input value.
 * - SplitV on the channel axis (inception gradients): the stock one copies value by value.
 * - Conv2D (and both gradients): on maps smaller than the filter's reach, only the taps that
 *   meet real input are used.
 * Each is checked against the cpu backend in test/model/wasm-kernels.test.ts. They are written
 * against tfjs 4.22.0's kernel attributes; package.json pins that version.
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './batch-mat-mul.js';
import { conv2dConfig } from './conv2d.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { splitVConfig } from './split-v.js';
import { stockKernel } from './kernel-calls.js';

const overrides: tf.KernelConfig[] = [
  conv2dConfig,
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  batchMatMulConfig,
  maxPoolGradConfig,
  splitVConfig,
];

let registered = false;

/** Idempotent. Call after the wasm backend package is imported, before training. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const config of overrides) {
    if (tf.getKernel(config.kernelName, 'wasm')) {
      stockKernel(config.kernelName); // keep the stock one as a fallback
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
  }
  registered = true;
}
