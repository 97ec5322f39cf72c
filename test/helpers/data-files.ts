/**
 * Real data set files for tests and benchmarks: IDX files of the real handwritten digits
 * (src/data/mnist-digits.ts), CIFAR-10 binary records, and image folders written with sharp.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { loadConfig } from '../../src/config.js';
import { dataLimitsOf } from '../../src/data/data-limits.js';

export { idxBytes, MNIST_PER_CLASS, writeMnistIdx } from '../../src/data/mnist-digits.js';

/** The data limits of the default settings (DATA_MAX_BYTES, DATA_MAX_IMAGES). */
export const DEFAULT_DATA_LIMITS = dataLimitsOf(loadConfig({}));

/** Zeros per gzip member of {@link gzipBomb}. */
const BOMB_MEMBER_BYTES = 64 * 1024 * 1024;
let bombMember: Buffer | undefined;

/**
 * A gzip stream of `bytes` zeros, about a thousandth of their size: gzip members of 64 MiB of
 * zeros each, compressed once and repeated (gunzip reads concatenated members as one stream).
 */
export function gzipBomb(bytes: number): Buffer {
  bombMember ??= gzipSync(Buffer.alloc(BOMB_MEMBER_BYTES), { level: 9 });
  const whole = Math.floor(bytes / BOMB_MEMBER_BYTES);
  const rest = bytes % BOMB_MEMBER_BYTES;
  const members: Buffer[] = Array.from({ length: whole }, () => bombMember as Buffer);
  if (rest > 0) members.push(gzipSync(Buffer.alloc(rest), { level: 9 }));
  return Buffer.concat(members);
}

/** A recognisable 32x32 RGB picture for class `label`: a colour per class, a seeded brightness. */
function cifarPixels(label: number, index: number): { r: number; g: number; b: number } {
  return { r: (label * 25) % 256, g: 255 - label * 20, b: (index * 7) % 256 };
}

/** CIFAR-10 binary records: each label byte then the R, G and B planes (1024 bytes each). */
export function cifarRecords(labels: number[]): Buffer {
  const record = 3073;
  const out = Buffer.alloc(labels.length * record);
  labels.forEach((label, i) => {
    out[i * record] = label;
    const { r, g, b } = cifarPixels(label, i);
    out.fill(r, i * record + 1, i * record + 1025);
    out.fill(g, i * record + 1025, i * record + 2049);
    out.fill(b, i * record + 2049, i * record + 3073);
  });
  return out;
}

export async function writeCifar10(
  dir: string,
  perBatch: number,
  testCount: number,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let b = 1; b <= 5; b++) {
    const labels = Array.from({ length: perBatch }, (_, i) => (i + b) % 10);
    await writeFile(path.join(dir, `data_batch_${b}.bin`), cifarRecords(labels));
  }
  const test = Array.from({ length: testCount }, (_, i) => i % 10);
  await writeFile(path.join(dir, 'test_batch.bin'), cifarRecords(test));
}

/** Class colours of {@link writeImageFolder}: far apart, so a tiny network tells them apart. */
export const FOLDER_COLOURS: Record<string, [number, number, number]> = {
  blue: [30, 60, 220],
  green: [40, 200, 60],
  red: [220, 40, 40],
};

/**
 * `dir/<class>/<n>.<ext>`: a coloured square on a noisy grey background, sized and placed by
 * `n`, written as PNG, JPEG or WebP by turns.
 */
export async function writeImageFolder(
  dir: string,
  options: { perClass: number; size: number; classes?: string[]; formats?: string[] },
): Promise<void> {
  const classes = options.classes ?? Object.keys(FOLDER_COLOURS);
  const formats = options.formats ?? ['png', 'jpg', 'webp'];
  const s = options.size;
  for (const name of classes) {
    await mkdir(path.join(dir, name), { recursive: true });
    const colour = FOLDER_COLOURS[name] ?? [128, 128, 128];
    for (let n = 0; n < options.perClass; n++) {
      const pixels = Buffer.alloc(s * s * 3);
      const side = Math.round(s * (0.4 + (0.3 * ((n * 37) % 10)) / 10));
      const x0 = (n * 13) % (s - side + 1);
      const y0 = (n * 29) % (s - side + 1);
      for (let y = 0; y < s; y++)
        for (let x = 0; x < s; x++) {
          const inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
          const noise = ((x * 31 + y * 17 + n * 7) % 40) - 20;
          for (let c = 0; c < 3; c++)
            pixels[(y * s + x) * 3 + c] = Math.max(
              0,
              Math.min(255, (inside ? colour[c]! : 120) + noise),
            );
        }
      const format = formats[n % formats.length] as string;
      const image = sharp(pixels, { raw: { width: s, height: s, channels: 3 } });
      const encoded =
        format === 'png'
          ? image.png()
          : format === 'webp'
            ? image.webp({ quality: 90 })
            : image.jpeg({ quality: 90 });
      await encoded.toFile(path.join(dir, name, `${n}.${format}`));
    }
  }
}
