/**
 * Turns one decoded image into network input: crop (the whole image unless augmenting),
 * bilinear resize to `size`x`size`, optional flip, channel conversion, photometric jitter, then
 * values in [0, 1] (or normalised). Plain loops over typed arrays: it runs in the pipeline's
 * worker threads, never on the training thread.
 */
import type { ImageTransform } from './augmentation.js';
import type { Normalization } from './normalization.js';
import type { RawImage } from './raw-image.js';

/** ITU-R BT.601 luma weights, as most image libraries convert RGB to grey. */
const LUMA = [0.299, 0.587, 0.114] as const;

/**
 * Writes `size*size*channels` values into `out` at `offset`: in [0, 1], or normalised when
 * `normalization` is given.
 */
export function transformImage(
  image: RawImage,
  size: number,
  channels: 1 | 3,
  transform: ImageTransform,
  out: Float32Array,
  offset: number,
  normalization?: Normalization,
): void {
  const { data, width, height, channels: sc } = image;
  const box = transform.box ?? { x: 0, y: 0, width, height };
  const sx = box.width / size;
  const sy = box.height / size;
  const rgb = [0, 0, 0];
  // Per-image mean grey for contrast: measured on the source once, cheap enough.
  let meanGrey = 0;
  if (transform.contrast !== 1) {
    let total = 0;
    for (let p = 0; p < width * height; p++) {
      total +=
        sc === 1
          ? (data[p] as number)
          : LUMA[0] * (data[3 * p] as number) +
            LUMA[1] * (data[3 * p + 1] as number) +
            LUMA[2] * (data[3 * p + 2] as number);
    }
    meanGrey = total / (width * height) / 255;
  }
  for (let y = 0; y < size; y++) {
    const fy = Math.min(Math.max(box.y + (y + 0.5) * sy - 0.5, 0), height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, height - 1);
    const wy = fy - y0;
    for (let x = 0; x < size; x++) {
      const xx = transform.flip ? size - 1 - x : x;
      const fx = Math.min(Math.max(box.x + (xx + 0.5) * sx - 0.5, 0), width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, width - 1);
      const wx = fx - x0;
      for (let ch = 0; ch < 3; ch++) {
        const c = sc === 1 ? 0 : ch;
        const a = data[(y0 * width + x0) * sc + c] as number;
        const b = data[(y0 * width + x1) * sc + c] as number;
        const d = data[(y1 * width + x0) * sc + c] as number;
        const e = data[(y1 * width + x1) * sc + c] as number;
        rgb[ch] = ((a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy) / 255;
        if (sc === 1) break;
      }
      if (sc === 1) rgb[1] = rgb[2] = rgb[0] as number;
      // Photometric jitter in a fixed order: brightness, contrast, saturation.
      let r = (rgb[0] as number) * transform.brightness;
      let g = (rgb[1] as number) * transform.brightness;
      let bl = (rgb[2] as number) * transform.brightness;
      if (transform.contrast !== 1) {
        const m = meanGrey * transform.brightness;
        r = m + (r - m) * transform.contrast;
        g = m + (g - m) * transform.contrast;
        bl = m + (bl - m) * transform.contrast;
      }
      if (transform.saturation !== 1) {
        const grey = LUMA[0] * r + LUMA[1] * g + LUMA[2] * bl;
        r = grey + (r - grey) * transform.saturation;
        g = grey + (g - grey) * transform.saturation;
        bl = grey + (bl - grey) * transform.saturation;
      }
      const at = offset + (y * size + x) * channels;
      const values = channels === 1 ? [LUMA[0] * r + LUMA[1] * g + LUMA[2] * bl] : [r, g, bl];
      for (let ch = 0; ch < channels; ch++) {
        const v = Math.min(Math.max(values[ch] as number, 0), 1);
        out[at + ch] = normalization
          ? (v - (normalization.mean[ch] as number)) / (normalization.std[ch] as number)
          : v;
      }
    }
  }
}
