/**
 * Makes the wasm backend able to train GoogLeNet, and fast: registers our Conv2DBackpropFilter
 * (missing in tfjs-backend-wasm 4.22) and replaces its scalar-loop Conv2DBackpropInput and
 * the scalar-loop transposed cases of BatchMatMul, and its quadratic MaxPoolGrad.
 * Both are written against tfjs 4.22.0's kernel attributes; package.json pins that version.
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './batch-mat-mul.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { stockKernel } from './kernel-calls.js';

const overrides: tf.KernelConfig[] = [
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  batchMatMulConfig,
  maxPoolGradConfig,
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
