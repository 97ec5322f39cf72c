/**
 * Conv2D for the wasm backend: the stock XNNPACK kernel, with the filter cropped to the taps
 * that can meet real input (see used-taps.ts) when the map is smaller than the filter reach.
 */
import {
  backend_util,
  type KernelBackend,
  type KernelConfig,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { release, run, stockKernel } from './kernel-calls.js';
import { usedTaps } from './used-taps.js';

interface Conv2DAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export const conv2dConfig: KernelConfig = {
  kernelName: 'Conv2D',
  backendName: 'wasm',
  kernelFunc: (args) => {
    const backend = args.backend as KernelBackend;
    const x = args.inputs['x'] as TensorInfo;
    const filter = args.inputs['filter'] as TensorInfo;
    const attrs = args.attrs as unknown as Conv2DAttrs;
    if (attrs.dataFormat === 'NCHW') return stockKernel('Conv2D')(args);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const taps = usedTaps(info);
    if (!taps) return stockKernel('Conv2D')(args);
    const cropped = run(
      'Slice',
      backend,
      { x: filter },
      {
        begin: [taps.top, taps.left, 0, 0],
        size: [taps.height, taps.width, info.inChannels, info.outChannels],
      },
    );
    const out = run(
      'Conv2D',
      backend,
      { x, filter: cropped },
      { strides: [1, 1], dilations: [1, 1], pad: taps.pad, dataFormat: 'NHWC' },
    );
    release(backend, cropped);
    return out;
  },
};
