/**
 * MaxPoolGrad for the wasm backend, written in JavaScript on the wasm heap.
 *
 * Why: the stock kernel (tfjs-backend-wasm 4.22) visits every input position and re-derives the
 * argmax of every window that covers it — about 81 comparisons per input value for a 3x3/2
 * pool, 15-18% of a 224x224 GoogLeNet training step. Here each window's argmax is found once
 * (first maximum in row-major order, as the cpu backend picks it; padding never wins) and its
 * gradient added there: ~10 operations per output value.
 */
import {
  backend_util,
  type KernelBackend,
  type KernelConfig,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { stockKernel } from './kernel-calls.js';

interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

interface MaxPoolGradAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGrad(
  backend: KernelBackend,
  dy: TensorInfo,
  input: TensorInfo,
  attrs: MaxPoolGradAttrs,
): TensorInfo {
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: ho,
    outWidth: wo,
  } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;

  const wasm = backend as unknown as WasmHeapBackend;
  const dx = wasm.makeOutput([n, h, w, c], 'float32');
  // Views after makeOutput: allocating may have grown (replaced) the heap buffer.
  const x = wasm.typedArrayFromHeap(input);
  const g = wasm.typedArrayFromHeap(dy);
  const out = wasm.typedArrayFromHeap(dx);
  out.fill(0);
  const best = new Float32Array(c);
  const bestAt = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < ho; oy++) {
      const y0 = Math.max(0, oy * sh - top);
      const y1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < wo; ox++) {
        const x0 = Math.max(0, ox * sw - left);
        const x1 = Math.min(w, ox * sw - left + fw);
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let y = y0; y < y1; y++) {
          for (let xx = x0; xx < x1; xx++) {
            const base = ((b * h + y) * w + xx) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch] as number;
              if (v > (best[ch] as number)) {
                best[ch] = v;
                bestAt[ch] = base + ch;
              }
            }
          }
        }
        const dyBase = ((b * ho + oy) * wo + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          const at = bestAt[ch] as number;
          // A window of NaNs has no maximum; its gradient goes nowhere, as on the cpu backend.
          if (at >= 0) out[at] = (out[at] as number) + (g[dyBase + ch] as number);
        }
      }
    }
  }
  return dx;
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as KernelBackend;
    const a = attrs as unknown as MaxPoolGradAttrs & { dataFormat?: string };
    const dy = inputs['dy'] as TensorInfo;
    const input = inputs['input'] as TensorInfo;
    if (input.dtype !== 'float32' || input.shape.length !== 4)
      return stockKernel('MaxPoolGrad')(args);
    return maxPoolGrad(backend, dy, input, a);
  },
};
