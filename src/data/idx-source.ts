/**
 * The IDX format of MNIST, Fashion-MNIST and KMNIST: `{train,t10k}-{images-idx3,labels-idx1}-ubyte`
 * in one folder, each optionally gzipped. Header: two zero bytes, a type byte (0x08 = unsigned
 * bytes), the number of dimensions, then each dimension as a big-endian uint32.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DatasetError, type ImageSource, type RawImage } from './raw-image.js';

export type DataSplit = 'train' | 'test';

const PREFIX: Record<DataSplit, string> = { train: 'train', test: 't10k' };

/** The file names of a split (without `.gz`). */
export function idxFiles(split: DataSplit): { images: string; labels: string } {
  return {
    images: `${PREFIX[split]}-images-idx3-ubyte`,
    labels: `${PREFIX[split]}-labels-idx1-ubyte`,
  };
}

/** The path of `name` or `name.gz` in `dir`, whichever exists. */
export async function findIdxFile(dir: string, name: string): Promise<string | undefined> {
  for (const candidate of [name, `${name}.gz`]) {
    const file = path.join(dir, candidate);
    if (
      await access(file).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

/** Parses one IDX file: its dimensions and its unsigned-byte payload. */
export function parseIdx(bytes: Uint8Array, name: string): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0)
    throw new DatasetError(`${name} is not an IDX file`);
  if (bytes[2] !== 0x08) throw new DatasetError(`${name}: only unsigned-byte IDX files are read`);
  const rank = bytes[3] ?? 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * rank) throw new DatasetError(`${name}: header cut short`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start !== size)
    throw new DatasetError(`${name}: ${bytes.length - start} data bytes, header says ${size}`);
  return { dims, data: bytes.subarray(start) };
}

async function readIdx(file: string): Promise<{ dims: number[]; data: Uint8Array }> {
  const raw = await readFile(file);
  const bytes = file.endsWith('.gz') ? gunzipSync(raw) : raw;
  return parseIdx(bytes, path.basename(file));
}

/** Only the labels of a split (what the submission check reads). */
export async function readIdxLabels(dir: string, split: DataSplit): Promise<Uint8Array> {
  const name = idxFiles(split).labels;
  const file = await findIdxFile(dir, name);
  if (!file) throw new DatasetError(`${name} (or .gz) not found`);
  const { dims, data } = await readIdx(file);
  if (dims.length !== 1) throw new DatasetError(`${name}: labels must be one-dimensional`);
  return data;
}

/** A whole split in memory (MNIST's 60,000 images are 47 MB). */
export async function openIdxSource(dir: string, split: DataSplit): Promise<ImageSource> {
  const names = idxFiles(split);
  const imagesFile = await findIdxFile(dir, names.images);
  if (!imagesFile) throw new DatasetError(`${names.images} (or .gz) not found`);
  const images = await readIdx(imagesFile);
  const labels = await readIdxLabels(dir, split);
  const [count, height, width] = images.dims;
  if (images.dims.length !== 3 || count === undefined || !height || !width)
    throw new DatasetError(`${names.images}: images must be [count, rows, columns]`);
  if (count !== labels.length)
    throw new DatasetError(`${count} images but ${labels.length} labels`);
  const numClasses = labels.reduce((m, l) => Math.max(m, l), 0) + 1;
  const pixels = height * width;
  return {
    classes: Array.from({ length: numClasses }, (_, i) => String(i)),
    labels: Int32Array.from(labels),
    read: (index: number): Promise<RawImage> =>
      Promise.resolve({
        data: images.data.subarray(index * pixels, (index + 1) * pixels),
        width,
        height,
        channels: 1,
      }),
  };
}
