/**
 * Turns an uploaded JPEG, PNG or WebP into the raw pixels a model takes: decoded with sharp,
 * turned upright (EXIF), alpha dropped, converted to sRGB or grayscale, stretched to the
 * model's square input size, as bytes in HWC order. Runs in a model thread (model-thread.ts),
 * so decoding a large image never holds the API's event loop.
 */
import { ACCEPTED_IMAGE_FORMATS } from './image-format.js';

/** Content types `POST /v1/runs/:id/predict` accepts (the bytes decide: image-format.ts). */
export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;

/** Refuse decompression bombs: a small file may still claim a huge canvas. */
const MAX_INPUT_PIXELS = 40_000_000;

/** The body cannot be decoded as the image it claims to be (a 422). */
export class ImageUnreadableError extends Error {
  override name = 'ImageUnreadableError';
}

export async function imagePixels(
  body: Uint8Array,
  size: number,
  channels: 1 | 3,
): Promise<Uint8Array> {
  const { default: sharp } = await import('sharp');
  try {
    const source = sharp(body, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
    // libvips picks its loader by the bytes too; this holds even if a signature check missed.
    const { format } = await source.metadata();
    if (!(ACCEPTED_IMAGE_FORMATS as readonly string[]).includes(format ?? '')) {
      throw new Error(`it is ${format ?? 'of an unknown format'}, not JPEG, PNG or WebP`);
    }
    let image = source.rotate().removeAlpha();
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
    throw new ImageUnreadableError(
      `the body could not be read as an image: ${(error as Error).message}`,
    );
  }
}
