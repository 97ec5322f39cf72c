/**
 * Layout changes written in JavaScript straight on the wasm heap.
 *
 * Why: in tfjs-backend-wasm 4.22, `Reverse` costs ~30 ns per element and `Transpose` of large
 * power-of-two matrices ~9 ns (measured with a 3x3x160x320 filter and a 2048x1024 matrix), more
 * than the XNNPACK convolutions they feed. A cache-blocked loop here runs at ~1 ns per element.
 */
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { heapView, makeOutput } from './wasm-heap.js';

const BLOCK = 32;

/** dst[c][r] = src[r][c] for one rows x cols matrix, cache-blocked. */
function transposeBlock(
  src: Float32Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  rows: number,
  cols: number,
): void {
  for (let r0 = 0; r0 < rows; r0 += BLOCK) {
    const r1 = Math.min(r0 + BLOCK, rows);
    for (let c0 = 0; c0 < cols; c0 += BLOCK) {
      const c1 = Math.min(c0 + BLOCK, cols);
      for (let r = r0; r < r1; r++) {
        const s = srcOffset + r * cols;
        for (let c = c0; c < c1; c++) dst[dstOffset + c * rows + r] = src[s + c] as number;
      }
    }
  }
}

/** [rows, cols] -> [cols, rows]. */
export function transpose2dOnHeap(backend: KernelBackend, x: TensorInfo): TensorInfo {
  const [rows = 0, cols = 0] = x.shape;
  const out = makeOutput(backend, [cols, rows]);
  // Read both views after makeOutput: allocating may grow (and so replace) the heap buffer.
  transposeBlock(heapView(backend, x), 0, heapView(backend, out), 0, rows, cols);
  return out;
}

/**
 * Filter [kh, kw, ci, co] -> [kh, kw, co, ci] rotated by 180° in space, in one pass:
 * out[i][j][o][c] = w[kh-1-i][kw-1-j][c][o]. This is the filter of the input-gradient convolution.
 */
export function rotateFilterOnHeap(backend: KernelBackend, filter: TensorInfo): TensorInfo {
  const [kh = 0, kw = 0, ci = 0, co = 0] = filter.shape;
  const out = makeOutput(backend, [kh, kw, co, ci]);
  const src = heapView(backend, filter);
  const dst = heapView(backend, out);
  const taps = kh * kw;
  const tapSize = ci * co;
  for (let t = 0; t < taps; t++)
    transposeBlock(src, t * tapSize, dst, (taps - 1 - t) * tapSize, ci, co);
  return out;
}

export interface RowUnfold {
  /** Filter height and vertical stride of the forward convolution. */
  kh: number;
  strideH: number;
  /** Zero rows above / columns left of the input in the forward convolution. */
  padTop: number;
  padLeft: number;
  /** Output height of the forward convolution. */
  outHeight: number;
  /** Padded width to produce (columns beyond the input are zeros). */
  paddedWidth: number;
}

/**
 * x [N, H, W, C] -> [C, kh, Wp, N*Ho] with
 * out[c][i][w][n*Ho + y] = x[n][y*strideH + i - padTop][w - padLeft][c] (0 outside x).
 * The rows each filter row i meets, laid out so the filter-gradient convolution reduces over
 * N*Ho contiguous values (see conv2d-backprop-filter.ts).
 */
export function unfoldRowsOnHeap(backend: KernelBackend, x: TensorInfo, u: RowUnfold): TensorInfo {
  const [n = 0, h = 0, w = 0, c = 0] = x.shape;
  const { kh, strideH, padTop, padLeft, outHeight: ho, paddedWidth: wp } = u;
  const out = makeOutput(backend, [c, kh, wp, n * ho]);
  const src = heapView(backend, x);
  const dst = heapView(backend, out);
  dst.fill(0);
  const inner = n * ho;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < ho; y++) {
      for (let i = 0; i < kh; i++) {
        const row = y * strideH + i - padTop;
        if (row < 0 || row >= h) continue;
        const rowBase = (b * h + row) * w * c;
        const col = b * ho + y;
        for (let wx = Math.max(0, padLeft); wx < Math.min(wp, w + padLeft); wx++) {
          const s = rowBase + (wx - padLeft) * c;
          // dst index for (ch, i, wx, col): ((ch*kh + i)*wp + wx)*inner + col
          let d = (i * wp + wx) * inner + col;
          const step = kh * wp * inner;
          for (let ch = 0; ch < c; ch++, d += step) dst[d] = src[s + ch] as number;
        }
      }
    }
  }
  return out;
}
