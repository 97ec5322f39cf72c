/**
 * Turns an uploaded JPEG, PNG or WebP into the raw pixels a model takes: decoded with sharp,
 * turned upright (EXIF), alpha dropped, converted to sRGB or grayscale, stretched to the
 * model's square input size, as bytes in HWC order. sharp (libvips) loads on the first image, so
 * the API starts even where its native binary cannot load.
 */
import { HttpError } from '../errors.js';

/** Content types `POST /v1/runs/:id/predict` accepts. */
export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;

/** Refuse decompression bombs: a small file may still claim a huge canvas. */
const MAX_INPUT_PIXELS = 40_000_000;

export async function imagePixels(
  body: Buffer,
  size: number,
  channels: 1 | 3,
): Promise<Uint8Array> {
  const { default: sharp } = await import('sharp');
  try {
    let image = sharp(body, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .rotate()
      .removeAlpha();
    image = channels === 1 ? image.grayscale() : image.toColourspace('srgb');
    const { data, info } = await image
      .resize(size, size, { fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== channels || data.byteLength !== size * size * channels) {
      throw new Error(`decoded to ${info.channels} channels`);
    }
    return data;
  } catch (error) {
    throw new HttpError(
      422,
      'Unprocessable image',
      `the body could not be read as an image: ${(error as Error).message}`,
    );
  }
}
