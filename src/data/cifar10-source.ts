/**
 * CIFAR-10's binary version: `data_batch_1.bin` … `data_batch_5.bin` (train) and
 * `test_batch.bin` (test). Each record is one label byte and 3072 pixel bytes: the 32x32 red
 * plane, then green, then blue (CHW), which is turned into HWC here. Files are checked by their
 * real path and size (against the data limits) before any is read.
 */
import { open, stat } from 'node:fs/promises';
import { checkDeclaredSize, type DataLimits } from './data-limits.js';
import { realPathInside, type DataFolder } from './data-path.js';
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

/** A split's files as found: their real paths and sizes, all checked. */
interface Cifar10Files {
  files: Array<{ name: string; file: string; size: number }>;
}

/**
 * Finds and checks a split's files without reading them: each a regular file whose real path
 * lies inside DATA_ROOT, a whole number of records, and all of them within the data limits.
 * Missing files are named together.
 */
export async function findCifar10Files(
  folder: DataFolder,
  split: DataSplit,
  limits: DataLimits,
): Promise<Cifar10Files> {
  const files: Cifar10Files['files'] = [];
  const missing: string[] = [];
  for (const name of cifar10Files(split)) {
    let file: string;
    try {
      file = await realPathInside(folder.realRoot, folder.dir, name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      missing.push(name);
      continue;
    }
    const info = await stat(file);
    if (!info.isFile()) throw new DatasetError(`${name} is not a file`);
    if (info.size === 0 || info.size % RECORD !== 0)
      throw new DatasetError(`${name}: not a whole number of 3073-byte records`);
    files.push({ name, file, size: info.size });
  }
  if (missing.length > 0) throw new DatasetError(`lacks ${missing.join(', ')}`);
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  checkDeclaredSize(
    `the ${split} split`,
    { images: bytes / RECORD, bytes: (bytes / RECORD) * 3 * PLANE },
    limits,
  );
  return { files };
}

/**
 * Reads `file` into `target`, which has the size it was found with: a file that has changed
 * size since is refused, never read past it.
 */
async function readChecked(file: string, name: string, target: Buffer): Promise<void> {
  const handle = await open(file, 'r');
  try {
    let filled = 0;
    while (filled < target.length) {
      const { bytesRead } = await handle.read(target, filled, target.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const after = await handle.read(Buffer.alloc(1), 0, 1, filled);
    if (filled !== target.length || after.bytesRead !== 0)
      throw new DatasetError(`${name} changed while it was read`);
  } finally {
    await handle.close();
  }
}

export async function openCifar10Source(
  folder: DataFolder,
  split: DataSplit,
  limits: DataLimits,
): Promise<ImageSource> {
  const { files } = await findCifar10Files(folder, split, limits);
  const all = Buffer.alloc(files.reduce((sum, f) => sum + f.size, 0));
  let offset = 0;
  for (const { file, name, size } of files) {
    await readChecked(file, name, all.subarray(offset, offset + size));
    offset += size;
  }
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
