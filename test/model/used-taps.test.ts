import { backend_util } from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { usedTaps } from '../../src/model/wasm-kernels/used-taps.js';

const info = (
  side: number,
  k: number,
  pad: 'same' | 'valid' = 'same',
  stride = 1,
): backend_util.Conv2DInfo =>
  backend_util.computeConv2DInfo([1, side, side, 4], [k, k, 4, 8], stride, 1, pad);

describe('taps a convolution can apply to real input', () => {
  it('a 3x3 same convolution on a 1x1 map uses only the centre tap', () => {
    expect(usedTaps(info(1, 3))).toEqual({
      top: 1,
      left: 1,
      height: 1,
      width: 1,
      pad: [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    });
  });

  it('a 5x5 same convolution on a 2x2 map uses the central 3x3', () => {
    expect(usedTaps(info(2, 5))).toEqual({
      top: 1,
      left: 1,
      height: 3,
      width: 3,
      pad: [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
    });
  });

  it('leaves convolutions whose every tap meets input alone', () => {
    expect(usedTaps(info(2, 3))).toBeUndefined(); // corners reach the 2x2 map from some output
    expect(usedTaps(info(14, 3))).toBeUndefined();
    expect(usedTaps(info(7, 5, 'valid'))).toBeUndefined();
    expect(usedTaps(info(9, 3, 'same', 2))).toBeUndefined(); // strided: not rewritten
  });
});
