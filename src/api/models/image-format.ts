/**
 * What an uploaded image really is, from its first bytes. `POST /v1/runs/:id/predict` takes
 * JPEG, PNG and WebP only; the Content-Type a client sends is a claim, and libvips would
 * otherwise decode whatever the bytes are (TIFF, GIF, SVG with its XML parser, ...) behind it.
 */
import { HttpError } from '../errors.js';

/** The formats predict decodes, by the names sharp reports for them. */
export const ACCEPTED_IMAGE_FORMATS = ['jpeg', 'png', 'webp'] as const;
export type AcceptedImageFormat = (typeof ACCEPTED_IMAGE_FORMATS)[number];

const ascii = (bytes: Uint8Array, from: number, to: number): string =>
  String.fromCharCode(...bytes.subarray(from, to));

/** Signatures of the formats a client might send, accepted or not (first match wins). */
const SIGNATURES: Array<{
  name: string;
  format?: AcceptedImageFormat;
  test(b: Uint8Array): boolean;
}> = [
  { name: 'JPEG', format: 'jpeg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { name: 'PNG', format: 'png', test: (b) => ascii(b, 0, 8) === '\x89PNG\r\n\x1a\n' },
  {
    name: 'WebP',
    format: 'webp',
    test: (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP',
  },
  { name: 'GIF', test: (b) => /^GIF8[79]a$/.test(ascii(b, 0, 6)) },
  { name: 'TIFF', test: (b) => ['II*\0', 'MM\0*', 'II+\0', 'MM\0+'].includes(ascii(b, 0, 4)) },
  { name: 'BMP', test: (b) => ascii(b, 0, 2) === 'BM' },
  { name: 'HEIF/AVIF', test: (b) => ascii(b, 4, 8) === 'ftyp' },
  { name: 'PDF', test: (b) => ascii(b, 0, 5) === '%PDF-' },
  { name: 'JPEG 2000', test: (b) => ascii(b, 4, 12) === 'jP  \r\n\x87\n' },
  { name: 'gzip-compressed data (such as SVGZ)', test: (b) => b[0] === 0x1f && b[1] === 0x8b },
  {
    // Text that opens with markup: SVG, or XML that may hold it (after an optional BOM).
    name: 'SVG/XML',
    test: (b) => /^(\xef\xbb\xbf)?\s*</.test(ascii(b, 0, 64)),
  },
];

/** The format the bytes declare, or undefined when they match no known image signature. */
export function sniffImageFormat(
  bytes: Uint8Array,
): { name: string; format?: AcceptedImageFormat } | undefined {
  return SIGNATURES.find((signature) => signature.test(bytes));
}

/**
 * Throws unless `bytes` begin as a JPEG, PNG or WebP: 415 naming the format they are, 422 when
 * they are no image format at all. `claimed` (the Content-Type) is only quoted.
 */
export function requireAcceptedImage(bytes: Uint8Array, claimed: string | undefined): void {
  const found = sniffImageFormat(bytes);
  if (found?.format) return;
  if (!found) {
    throw new HttpError(
      422,
      'Unprocessable image',
      'the body could not be read as an image: its first bytes are not those of a JPEG, PNG or WebP',
    );
  }
  throw new HttpError(
    415,
    'Unsupported Media Type',
    `the body is ${found.name} (by its bytes, whatever Content-Type ${claimed ?? '(none)'} says); ` +
      'predict takes JPEG, PNG or WebP',
  );
}
