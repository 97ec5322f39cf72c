/**
 * Conv2DBackpropFilter for the wasm backend, which ships without one (tfjs 4.22).
 *
 * dW[i,j,ci,co] = sum over n,y,x of xPadded[n, y*s+i, x*s+j, ci] * dy[n,y,x,co]
 *
 * That sum is itself a convolution: take x as a batch of Ci single-"image" maps with N channels
 * ([Ci,H,W,N]) and dy as a filter of spatial size Ho x Wo mapping N to Co channels
 * ([Ho,Wo,N,Co]), convolve with dilation = the forward stride; the result [Ci,kh,kw,Co] is dW up
 * to a transpose. So the work runs in the backend's XNNPACK Conv2D instead of a scalar loop.
 * 1x1 stride-1 convolutions (most of GoogLeNet) are a plain matrix product xᵀ·dy.
 */
import { backend_util, type KernelBackend, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';
import { matMul2d, release, reshape, run, transpose } from './kernel-calls.js';

interface BackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

export function conv2dBackpropFilter(
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: BackpropFilterAttrs,
): TensorInfo {
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, outHeight: ho, outWidth: wo } = info;
  const { strideHeight: sh, strideWidth: sw } = info;

  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && info.padInfo.top === 0 && info.padInfo.left === 0) {
    const x2 = reshape(backend, x, [n * h * w, ci]);
    const dy2 = reshape(backend, dy, [n * ho * wo, co]);
    const dw = matMul2d(backend, x2, dy2, true, false);
    const out = reshape(backend, dw, [1, 1, ci, co]);
    release(backend, x2, dy2, dw);
    return out;
  }

  // Padding that makes the "convolution" output exactly kh x kw. Where the forward pass never
  // read the last rows/columns (stride leftovers), the needed padding is negative: crop instead.
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const bottom = kh + (ho - 1) * sh - h - top;
  const right = kw + (wo - 1) * sw - w - left;
  let input = x;
  let cropped: TensorInfo | undefined;
  if (bottom < 0 || right < 0) {
    cropped = run(
      'Slice',
      backend,
      { x },
      { begin: [0, 0, 0, 0], size: [n, h + Math.min(bottom, 0), w + Math.min(right, 0), ci] },
    );
    input = cropped;
  }
  const xT = transpose(backend, input, [3, 1, 2, 0]); // [Ci, H', W', N]
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [Ho, Wo, N, Co]
  const dwT = run(
    'Conv2D',
    backend,
    { x: xT, filter: dyT },
    {
      strides: [1, 1],
      dilations: [sh, sw],
      pad: [
        [0, 0],
        [top, Math.max(bottom, 0)],
        [left, Math.max(right, 0)],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  ); // [Ci, kh, kw, Co]
  const out = transpose(backend, dwT, [1, 2, 0, 3]);
  release(backend, xT, dyT, dwT);
  if (cropped) release(backend, cropped);
  return out;
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) =>
    conv2dBackpropFilter(
      backend,
      inputs['x'] as TensorInfo,
      inputs['dy'] as TensorInfo,
      attrs as unknown as BackpropFilterAttrs,
    ),
};
