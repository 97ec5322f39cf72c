/**
 * Conv2DBackpropInput for the wasm backend: the stock kernel is a scalar loop (about two thirds
 * of a 224x224 GoogLeNet training step, per WORKPLACE.md's profile).
 *
 * For stride 1, dx is the "full" correlation of dy with the filter rotated 180° and its in/out
 * channels swapped: dx = conv2d(dy, transpose(reverse(W, [0,1]), [0,1,3,2])) with padding
 * (k-1-padBefore, k-1-padAfter). That runs in XNNPACK's Conv2D. Strided convolutions (in
 * GoogLeNet only the stem, whose input gradient autograd never asks for) use the stock kernel.
 */
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { convInfo, withCroppedFilter, type ConvAttrs, type Shape4D } from './conv-geometry.js';
import { rotateFilterOnHeap } from './heap-transpose.js';
import { release, run, stockKernel } from './kernel-calls.js';
import { usedTaps } from './used-taps.js';

interface BackpropInputAttrs extends ConvAttrs {
  inputShape: Shape4D;
}

export function conv2dBackpropInput(
  backend: KernelBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  attrs: BackpropInputAttrs,
  stock: () => TensorInfo,
): TensorInfo {
  if (attrs.dataFormat === 'NCHW') return stock();
  const info = convInfo(attrs.inputShape, filter.shape as Shape4D, attrs);
  const taps = usedTaps(info);
  if (taps) {
    // Only these taps ever touched real input, so only they pass gradient back to it.
    return withCroppedFilter(backend, filter, taps, info, (cropped) =>
      conv2dBackpropInput(backend, dy, cropped, { ...attrs, pad: taps.pad }, stock),
    );
  }
  const { filterHeight: kh, filterWidth: kw, padInfo } = info;
  const top = kh - 1 - padInfo.top;
  const bottom = kh - 1 - padInfo.bottom;
  const left = kw - 1 - padInfo.left;
  const right = kw - 1 - padInfo.right;
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || Math.min(top, bottom, left, right) < 0) {
    return stock();
  }
  const flipped = rotateFilterOnHeap(backend, filter); // [kh, kw, Co, Ci]
  const dx = run(
    'Conv2D',
    backend,
    { x: dy, filter: flipped },
    {
      strides: [1, 1],
      dilations: [1, 1],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  release(backend, flipped);
  return dx;
}

export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as KernelBackend;
    return conv2dBackpropInput(
      backend,
      inputs['dy'] as TensorInfo,
      inputs['filter'] as TensorInfo,
      attrs as unknown as BackpropInputAttrs,
      () => stockKernel('Conv2DBackpropInput')(args) as TensorInfo,
    );
  },
};
