/**
 * Which filter taps a stride-1 convolution can ever apply to real (unpadded) input.
 *
 * Why: at small inputs GoogLeNet's late stages run 3x3 and 5x5 'same' convolutions on 2x2 and
 * 1x1 maps (at 32x32 input, 4a-4e see 2x2 and 5a-5b 1x1). A 3x3 filter on a 1x1 map only ever
 * multiplies real data with its centre tap; the other eight see padding. Cropping the filter to
 * the used taps gives the same result while XNNPACK packs and multiplies 1/9 of the weights.
 */
import type { backend_util } from '@tensorflow/tfjs-core';

export interface TapWindow {
  /** First used tap row / column. */
  top: number;
  left: number;
  /** Used taps (the cropped filter's size). */
  height: number;
  width: number;
  /** Explicit padding that, with the cropped filter, gives the same output. */
  pad: [[0, 0], [number, number], [number, number], [0, 0]];
}

function usedRange(
  inSize: number,
  outSize: number,
  k: number,
  padBefore: number,
): [number, number] {
  // Output o meets input row o + u - padBefore; it is real data for 0 <= row < inSize.
  const first = Math.max(0, padBefore - (outSize - 1));
  const last = Math.min(k - 1, padBefore + inSize - 1);
  return [first, last];
}

/**
 * The used taps of a stride-1, dilation-1 convolution, or undefined when every tap is used
 * (or the geometry is one we do not rewrite).
 */
export function usedTaps(info: backend_util.Conv2DInfo): TapWindow | undefined {
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return undefined;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, padInfo } = info;
  const [top, bottom] = usedRange(inHeight, outHeight, filterHeight, padInfo.top);
  const [left, right] = usedRange(inWidth, outWidth, filterWidth, padInfo.left);
  const height = bottom - top + 1;
  const width = right - left + 1;
  if (height <= 0 || width <= 0) return undefined;
  if (height === filterHeight && width === filterWidth) return undefined;
  const padTop = padInfo.top - top;
  const padLeft = padInfo.left - left;
  const padBottom = outHeight - 1 + height - inHeight - padTop;
  const padRight = outWidth - 1 + width - inWidth - padLeft;
  if (Math.min(padTop, padLeft, padBottom, padRight) < 0) return undefined;
  return {
    top,
    left,
    height,
    width,
    pad: [
      [0, 0],
      [padTop, padBottom],
      [padLeft, padRight],
      [0, 0],
    ],
  };
}
