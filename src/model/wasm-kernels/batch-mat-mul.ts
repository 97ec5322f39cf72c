/**
 * BatchMatMul for the wasm backend that keeps 2-D products on XNNPACK's fast path and packs
 * the smaller operand (every dense layer's forward pass and gradients); see {@link matMul2d}.
 * Batched (rank > 2, batch > 1) products use the stock kernel.
 */
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { matMul2d, release, reshape, stockKernel } from './kernel-calls.js';

export const batchMatMulConfig: KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as KernelBackend;
    const a = inputs['a'] as TensorInfo;
    const b = inputs['b'] as TensorInfo;
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    const batch = (x: TensorInfo): number => x.shape.slice(0, -2).reduce((p, d) => p * d, 1);
    if (batch(a) !== 1 || batch(b) !== 1) {
      return stockKernel('BatchMatMul')(args);
    }
    const a2 = reshape(backend, a, a.shape.slice(-2));
    const b2 = reshape(backend, b, b.shape.slice(-2));
    const c = matMul2d(backend, a2, b2, transposeA, transposeB);
    release(backend, a2, b2);
    if (a.shape.length <= 2 && b.shape.length <= 2) return c;
    const rank = Math.max(a.shape.length, b.shape.length);
    const out = reshape(backend, c, [...new Array<number>(rank - 2).fill(1), ...c.shape]);
    release(backend, c);
    return out;
  },
};
