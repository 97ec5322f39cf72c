/**
 * MaxPoolGrad for the wasm backend, written in JavaScript on the wasm heap.
 *
 * Why: the stock kernel (tfjs-backend-wasm 4.22) visits every input position and re-derives the
 * argmax of every window that covers it — about 81 comparisons per input value for a 3x3/2
 * pool, 15-18% of a 224x224 GoogLeNet training step. Here each window is scanned once for the
 * forward pass's maximum (first occurrence in row-major order, as the cpu backend picks it;
 * padding never wins) and the gradient added there: 55 ms -> 27 ms for a 4x112x112x64 pool.
 */
import {
  backend_util,
  type KernelBackend,
  type KernelConfig,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { stockKernel } from './kernel-calls.js';
import { heapView, makeOutput } from './wasm-heap.js';

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
  output: TensorInfo,
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

  const dx = makeOutput(backend, [n, h, w, c]);
  // Views after makeOutput: allocating may have grown (replaced) the heap buffer.
  const x = heapView(backend, input);
  const g = heapView(backend, dy);
  const y = heapView(backend, output);
  const out = heapView(backend, dx);
  out.fill(0);
  const rowStride = w * c;
  for (let b = 0; b < n; b++) {
    const image = b * h * rowStride;
    for (let oy = 0; oy < ho; oy++) {
      const y0 = Math.max(0, oy * sh - top);
      const y1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < wo; ox++) {
        const x0 = Math.max(0, ox * sw - left);
        const span = (Math.min(w, ox * sw - left + fw) - x0) * c;
        const corner = image + y0 * rowStride + x0 * c;
        const at = ((b * ho + oy) * wo + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          // The forward pass already found the maximum; its first occurrence in row-major order
          // takes the gradient. Comparing for equality (a well-predicted branch that exits
          // early) is ~2x faster than re-deriving the maximum.
          const max = y[at + ch] as number;
          search: for (let yy = y0, row = corner + ch; yy < y1; yy++, row += rowStride) {
            for (let i = row, end = row + span; i < end; i += c) {
              if (x[i] === max) {
                out[i] = (out[i] as number) + (g[at + ch] as number);
                break search;
              }
            }
          }
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
    const output = inputs['output'] as TensorInfo | undefined;
    if (!output || input.dtype !== 'float32' || input.shape.length !== 4) {
      return stockKernel('MaxPoolGrad')(args);
    }
    return maxPoolGrad(backend, dy, input, output, a);
  },
};
