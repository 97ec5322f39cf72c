/**
 * Conv2DBackpropFilter for the wasm backend, which ships without one (tfjs 4.22).
 *
 * dW[i,j,ci,co] = sum over n,y,x of xPadded[n, y*s+i, x*s+j, ci] * dy[n,y,x,co]
 *
 * That sum is itself a convolution, so the work runs in the backend's XNNPACK Conv2D instead of
 * a scalar loop. Unfold x by filter rows into R[ci, i, w, (n,y)] = xPadded[n, y*s+i, w, ci]
 * (kh copies of x) and lay dy out as a 1 x Wo filter F[0, x, (n,y), co] = dy[n,y,x,co]; then
 * dW[i,j,ci,co] = sum over x and (n,y) of R[ci, i, j + x*s, (n,y)] * F[0, x, (n,y), co]
 * — a convolution of R (batch Ci, height kh) with F at column dilation s, whose reduction runs
 * over N*Ho contiguous channels. (Using n alone as the channel dimension, the plainer
 * rewrite, is 3x slower at batch 4: XNNPACK then multiplies rows of 4 values.)
 * 1x1 stride-1 convolutions (most of GoogLeNet) are a plain matrix product xᵀ·dy.
 */
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { convInfo, type ConvAttrs, type Shape4D } from './conv-geometry.js';
import { unfoldRowsOnHeap } from './heap-transpose.js';
import { matMul2d, release, reshape, run, transpose } from './kernel-calls.js';
import { usedTaps } from './used-taps.js';

interface BackpropFilterAttrs extends ConvAttrs {
  filterShape: Shape4D;
}

export function conv2dBackpropFilter(
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: BackpropFilterAttrs,
): TensorInfo {
  if (attrs.dataFormat === 'NCHW')
    throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
  const info = convInfo(x.shape as Shape4D, attrs.filterShape, attrs);
  const taps = usedTaps(info);
  if (taps) {
    // Taps that only ever met padding have zero gradient: compute the used ones, pad with zeros.
    const used = conv2dBackpropFilter(backend, x, dy, {
      ...attrs,
      pad: taps.pad,
      filterShape: [taps.height, taps.width, info.inChannels, info.outChannels],
    });
    const out = run(
      'PadV2',
      backend,
      { x: used },
      {
        paddings: [
          [taps.top, info.filterHeight - taps.top - taps.height],
          [taps.left, info.filterWidth - taps.left - taps.width],
          [0, 0],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
    release(backend, used);
    return out;
  }
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, outHeight: ho, outWidth: wo } = info;
  const { strideHeight: sh, strideWidth: sw } = info;

  if (
    kh === 1 &&
    kw === 1 &&
    sh === 1 &&
    sw === 1 &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0
  ) {
    const x2 = reshape(backend, x, [n * h * w, ci]);
    const dy2 = reshape(backend, dy, [n * ho * wo, co]);
    const dw = matMul2d(backend, x2, dy2, true, false);
    const out = reshape(backend, dw, [1, 1, ci, co]);
    release(backend, x2, dy2, dw);
    return out;
  }

  // Rows of x that filter row i meets, as [Ci, kh, Wp, N*Ho], so the reduction over (n, y)
  // is the convolution's contiguous channel dimension.
  const paddedWidth = (wo - 1) * sw + kw;
  const rows = unfoldRowsOnHeap(backend, x, {
    kh,
    strideH: sh,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    outHeight: ho,
    paddedWidth,
  });
  const dyT = transpose(backend, dy, [2, 0, 1, 3]); // [Wo, N, Ho, Co]
  const filter = reshape(backend, dyT, [1, wo, n * ho, co]);
  const dwT = run(
    'Conv2D',
    backend,
    { x: rows, filter },
    { strides: [1, 1], dilations: [1, sw], pad: 'valid', dataFormat: 'NHWC' },
  ); // [Ci, kh, kw, Co]
  const out = transpose(backend, dwT, [1, 2, 0, 3]);
  release(backend, rows, dyT, filter, dwT);
  return out;
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) =>
    conv2dBackpropFilter(
      backend as KernelBackend,
      inputs['x'] as TensorInfo,
      inputs['dy'] as TensorInfo,
      attrs as unknown as BackpropFilterAttrs,
    ),
};
