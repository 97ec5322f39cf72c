/**
 * How much of a data set a reader may take in, from DATA_MAX_BYTES and DATA_MAX_IMAGES. The
 * limits are checked against what a file declares (an IDX header, a CIFAR-10 file's size)
 * before anything is allocated or inflated, and again while bytes arrive, so a small gzip file
 * that inflates to gigabytes is refused after reading no more than the limit allows.
 */
import { DatasetError } from './raw-image.js';

export interface DataLimits {
  /** Pixel bytes of one split a reader holds in memory (after gunzip). */
  maxBytes: number;
  /** Images in one split. */
  maxImages: number;
}

/** Refuses a split that declares more images or pixel bytes than the limits allow. */
export function checkDeclaredSize(
  what: string,
  declared: { images: number; bytes: number },
  limits: DataLimits,
): void {
  if (declared.images > limits.maxImages)
    throw new DatasetError(
      `${what} declares ${declared.images} images; DATA_MAX_IMAGES is ${limits.maxImages}`,
    );
  if (declared.bytes > limits.maxBytes)
    throw new DatasetError(
      `${what} declares ${declared.bytes} bytes of pixels; DATA_MAX_BYTES is ${limits.maxBytes}`,
    );
}

/** The limits from the settings that hold them (src/config.ts). */
export function dataLimitsOf(settings: {
  DATA_MAX_BYTES: number;
  DATA_MAX_IMAGES: number;
}): DataLimits {
  return { maxBytes: settings.DATA_MAX_BYTES, maxImages: settings.DATA_MAX_IMAGES };
}
