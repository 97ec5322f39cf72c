/**
 * A generated image classification data set: each class is a coloured square (hue and position
 * chosen by class) on a noisy background, with per-image jitter of position, size and
 * brightness. Cheap to make at any size and learnable in seconds, so tests can show that
 * training really learns. Deterministic: the same (seed, index) always gives the same image.
 */
import { mixSeed, mulberry32 } from '../spec/seed.js';

export interface SyntheticSpec {
  numClasses: number;
  /** Images in the set. */
  size: number;
  seed: number;
  /** Square side in pixels. */
  inputSize: number;
  channels: 1 | 3;
}

/**
 * How this data set's pixel values in [0, 1] become network inputs: `(v - mean) / std` for every
 * channel. An exported model carries it, so a user's image (bytes / 255) is treated the same.
 */
export const SYNTHETIC_NORMALIZATION = { mean: 0.3, std: 0.3 } as const;

export interface ImageBatch {
  /** NHWC, normalised to roughly zero mean and unit variance. */
  images: Float32Array;
  labels: Int32Array;
  count: number;
}

function hueToRgb(hue: number): [number, number, number] {
  const f = (n: number): number => {
    const k = (n + hue * 6) % 6;
    return 1 - Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

/** Writes image `index` of the set into `out` at `offset`; returns its label. */
export function renderSyntheticImage(
  spec: SyntheticSpec,
  index: number,
  out: Float32Array,
  offset: number,
): number {
  const { inputSize: s, channels: c, numClasses } = spec;
  const random = mulberry32(mixSeed(spec.seed, index));
  const label = index % numClasses;
  const [r, g, b] = hueToRgb(label / numClasses);
  const grid = Math.ceil(Math.sqrt(numClasses));
  const cell = s / grid;
  const side = Math.max(2, Math.round(cell * (0.6 + 0.3 * random())));
  const cx = (label % grid) * cell + cell / 2 + (random() - 0.5) * cell * 0.3;
  const cy = Math.floor(label / grid) * cell + cell / 2 + (random() - 0.5) * cell * 0.3;
  const x0 = Math.max(0, Math.round(cx - side / 2));
  const y0 = Math.max(0, Math.round(cy - side / 2));
  const brightness = 0.7 + 0.3 * random();
  const colour =
    c === 3
      ? [r * brightness, g * brightness, b * brightness]
      : [brightness * (0.3 + (0.7 * (label + 1)) / numClasses)];
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
      for (let ch = 0; ch < c; ch++) {
        const base = inside ? (colour[ch] ?? 0) : 0.2;
        const value = base + (random() - 0.5) * 0.2;
        out[offset + (y * s + x) * c + ch] =
          (value - SYNTHETIC_NORMALIZATION.mean) / SYNTHETIC_NORMALIZATION.std;
      }
    }
  }
  return label;
}

/** Renders images [start, start + count) of the set. */
export function syntheticBatch(spec: SyntheticSpec, start: number, count: number): ImageBatch {
  const pixels = spec.inputSize * spec.inputSize * spec.channels;
  const images = new Float32Array(count * pixels);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = renderSyntheticImage(spec, (start + i) % spec.size, images, i * pixels);
  }
  return { images, labels, count };
}
