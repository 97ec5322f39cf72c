/**
 * SplitV along the last (channel) axis for the wasm backend, copied on the wasm heap.
 *
 * Why: autograd splits every inception block's output gradient back into its four branches.
 * The stock kernel slices element by element in JavaScript (~12 ns per value: 18 ms for a
 * 4x28x28x480 gradient, 6% of a 224x224 step); here each pixel's channel runs are copied as
 * contiguous blocks.
 */
import {
  util,
  type KernelBackend,
  type KernelConfig,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { stockKernel } from './kernel-calls.js';
import { heapView, makeOutput } from './wasm-heap.js';

export function splitLastAxis(
  backend: KernelBackend,
  x: TensorInfo,
  sizes: number[],
): TensorInfo[] {
  const channels = x.shape[x.shape.length - 1] ?? 0;
  const pixels = util.sizeFromShape(x.shape) / Math.max(channels, 1);
  const outputs = sizes.map((size) => makeOutput(backend, [...x.shape.slice(0, -1), size]));
  // Views after every makeOutput: allocating may have grown (replaced) the heap buffer.
  const src = heapView(backend, x);
  let offset = 0;
  outputs.forEach((out, k) => {
    const size = sizes[k] as number;
    const dst = heapView(backend, out);
    for (let p = 0, s = offset, d = 0; p < pixels; p++, s += channels, d += size) {
      dst.set(src.subarray(s, s + size), d); // a memcpy per pixel and branch
    }
    offset += size;
  });
  return outputs;
}

export const splitVConfig: KernelConfig = {
  kernelName: 'SplitV',
  backendName: 'wasm',
  kernelFunc: (args) => {
    const x = args.inputs['x'] as TensorInfo;
    const { numOrSizeSplits, axis } = args.attrs as {
      numOrSizeSplits: number[] | number;
      axis: number;
    };
    const rank = x.shape.length;
    const lastAxis = axis === -1 || axis === rank - 1;
    if (
      !lastAxis ||
      x.dtype !== 'float32' ||
      !Array.isArray(numOrSizeSplits) ||
      numOrSizeSplits.includes(-1)
    ) {
      return stockKernel('SplitV')(args);
    }
    return splitLastAxis(args.backend as KernelBackend, x, numOrSizeSplits);
  },
};
