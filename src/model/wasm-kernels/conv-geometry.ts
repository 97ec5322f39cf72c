/**
 * Attributes of tfjs 4.22's convolution kernels and the geometry helpers our wasm convolution
 * kernels share.
 */
import { backend_util, type KernelBackend, type TensorInfo } from '@tensorflow/tfjs-core';
import { release, run } from './kernel-calls.js';
import type { TapWindow } from './used-taps.js';

export type Shape4D = [number, number, number, number];

/** Attributes every Conv2D-family kernel takes. */
export interface ConvAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Geometry of an NHWC convolution (dilation 1 unless given). */
export function convInfo(
  xShape: Shape4D,
  filterShape: Shape4D,
  attrs: ConvAttrs,
  dilations: [number, number] | number = 1,
): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    dilations,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

/** The filter's used taps (see used-taps.ts) as a new [h, w, ci, co] tensor; caller releases it. */
function cropFilter(
  backend: KernelBackend,
  filter: TensorInfo,
  taps: TapWindow,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  return run(
    'Slice',
    backend,
    { x: filter },
    {
      begin: [taps.top, taps.left, 0, 0],
      size: [taps.height, taps.width, info.inChannels, info.outChannels],
    },
  );
}

/** Runs `compute` with the cropped filter and releases it afterwards. */
export function withCroppedFilter(
  backend: KernelBackend,
  filter: TensorInfo,
  taps: TapWindow,
  info: backend_util.Conv2DInfo,
  compute: (cropped: TensorInfo) => TensorInfo,
): TensorInfo {
  const cropped = cropFilter(backend, filter, taps, info);
  try {
    return compute(cropped);
  } finally {
    release(backend, cropped);
  }
}
