/**
 * Conv2D for the wasm backend: the stock XNNPACK kernel, with the filter cropped to the taps
 * that can meet real input (see used-taps.ts) when the map is smaller than the filter reach.
 */
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { convInfo, withCroppedFilter, type ConvAttrs, type Shape4D } from './conv-geometry.js';
import { run, stockKernel } from './kernel-calls.js';
import { usedTaps } from './used-taps.js';

interface Conv2DAttrs extends ConvAttrs {
  dilations: [number, number] | number;
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
    const info = convInfo(x.shape as Shape4D, filter.shape as Shape4D, attrs, attrs.dilations);
    const taps = usedTaps(info);
    if (!taps) return stockKernel('Conv2D')(args);
    return withCroppedFilter(backend, filter, taps, info, (cropped) =>
      run(
        'Conv2D',
        backend,
        { x, filter: cropped },
        { strides: [1, 1], dilations: [1, 1], pad: taps.pad, dataFormat: 'NHWC' },
      ),
    );
  },
};
