/**
 * CIFAR-10's binary version: `data_batch_1.bin` … `data_batch_5.bin` (train) and
 * `test_batch.bin` (test). Each record is one label byte and 3072 pixel bytes: the 32x32 red
 * plane, then green, then blue (CHW), which is turned into HWC here.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { DataSplit } from './idx-source.js';
import { DatasetError, type ImageSource, type RawImage } from './raw-image.js';

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

const SIDE = 32;
const PLANE = SIDE * SIDE;
const RECORD = 1 + 3 * PLANE;

export function cifar10Files(split: DataSplit): string[] {
  return split === 'test' ? ['test_batch.bin'] : [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
}

/** The split's files that are missing from `dir`. */
export async function missingCifar10Files(dir: string, split: DataSplit): Promise<string[]> {
  const missing: string[] = [];
  for (const name of cifar10Files(split)) {
    const ok = await access(path.join(dir, name)).then(
      () => true,
      () => false,
    );
    if (!ok) missing.push(name);
  }
  return missing;
}

export async function openCifar10Source(dir: string, split: DataSplit): Promise<ImageSource> {
  const missing = await missingCifar10Files(dir, split);
  if (missing.length > 0) throw new DatasetError(`missing ${missing.join(', ')}`);
  const batches = await Promise.all(
    cifar10Files(split).map((name) => readFile(path.join(dir, name))),
  );
  for (const [i, batch] of batches.entries()) {
    if (batch.length === 0 || batch.length % RECORD !== 0)
      throw new DatasetError(`${cifar10Files(split)[i]}: not a whole number of 3073-byte records`);
  }
  const all = Buffer.concat(batches);
  const count = all.length / RECORD;
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = all[i * RECORD] ?? 0;
    if (label >= CIFAR10_CLASSES.length)
      throw new DatasetError(`record ${i} has label ${label}; CIFAR-10 has 10 classes`);
    labels[i] = label;
  }
  return {
    classes: CIFAR10_CLASSES,
    labels,
    read(index: number): Promise<RawImage> {
      const base = index * RECORD + 1;
      const data = new Uint8Array(3 * PLANE);
      for (let p = 0; p < PLANE; p++) {
        data[3 * p] = all[base + p] ?? 0;
        data[3 * p + 1] = all[base + PLANE + p] ?? 0;
        data[3 * p + 2] = all[base + 2 * PLANE + p] ?? 0;
      }
      return Promise.resolve({ data, width: SIDE, height: SIDE, channels: 3 });
    },
  };
}
