/**
 * The paper's training augmentation, seeded per image: a random-resized crop (8%–100% of the
 * area, aspect ratio 3/4–4/3, as Szegedy et al. 2015 §6 describe), a horizontal flip, and
 * photometric jitter of brightness, contrast and saturation. Parameters are drawn from a seed
 * derived from (run seed, epoch, position), so a resumed run sees the very same images.
 */
import type { Augmentation } from '../spec/augmentation-spec.js';
import { mulberry32 } from '../spec/seed.js';

/** Crop box in source pixels. */
export interface CropBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** What one image's augmentation does; `undefined` fields leave the image as it is. */
export interface ImageTransform {
  box?: CropBox;
  flip: boolean;
  brightness: number;
  contrast: number;
  saturation: number;
}

export const IDENTITY_TRANSFORM: ImageTransform = {
  flip: false,
  brightness: 1,
  contrast: 1,
  saturation: 1,
};

/** Draws a random-resized crop: 10 tries at a box that fits, then the whole image. */
function randomResizedCrop(random: () => number, width: number, height: number): CropBox {
  const area = width * height;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (0.08 + 0.92 * random());
    const ratio = Math.exp(Math.log(3 / 4) + (Math.log(4 / 3) - Math.log(3 / 4)) * random());
    const w = Math.sqrt(target * ratio);
    const h = Math.sqrt(target / ratio);
    if (w <= width && h <= height) {
      return { x: (width - w) * random(), y: (height - h) * random(), width: w, height: h };
    }
  }
  return { x: 0, y: 0, width, height };
}

/** The transform of one image for `seed` (already mixed from run seed, epoch and position). */
export function drawTransform(
  augmentation: Augmentation,
  seed: number,
  width: number,
  height: number,
): ImageTransform {
  const random = mulberry32(seed);
  const factor = (): number => 1 + augmentation.jitter * (2 * random() - 1);
  return {
    ...(augmentation.crop ? { box: randomResizedCrop(random, width, height) } : {}),
    flip: augmentation.flip && random() < 0.5,
    brightness: factor(),
    contrast: factor(),
    saturation: factor(),
  };
}
