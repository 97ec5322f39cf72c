/**
 * The IDX format of MNIST, Fashion-MNIST and KMNIST: `{train,t10k}-{images-idx3,labels-idx1}-ubyte`
 * in one folder, each optionally gzipped (src/data/idx-file.ts reads one file). Every file is
 * checked before it is read: its real path inside DATA_ROOT, a regular file, and the sizes its
 * header declares within the data limits.
 */
import { stat } from 'node:fs/promises';
import { checkDeclaredSize, type DataLimits } from './data-limits.js';
import { realPathInside, type DataFolder } from './data-path.js';
import { readIdxFile, readIdxHeader, readIdxStream, idxByteStream } from './idx-file.js';
import type { IdxHeader } from './idx-file.js';
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

/** One file of a split, found: its name in the folder and its real path. */
interface FoundFile {
  name: string;
  file: string;
}

/**
 * `name` or `name.gz` in the folder, whichever exists, as a regular file inside DATA_ROOT;
 * a data set error when neither does.
 */
async function findIdxFile(folder: DataFolder, name: string): Promise<FoundFile> {
  for (const candidate of [name, `${name}.gz`]) {
    let file: string;
    try {
      file = await realPathInside(folder.realRoot, folder.dir, candidate);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    if (!(await stat(file)).isFile()) throw new DatasetError(`${candidate} is not a file`);
    return { name: candidate, file };
  }
  throw new DatasetError(`${name} (or .gz) not found`);
}

/** What the two headers of a split declare, checked against each other and the limits. */
export interface IdxSplitHeaders {
  count: number;
  height: number;
  width: number;
}

function checkImagesHeader(name: string, header: IdxHeader, limits: DataLimits): IdxSplitHeaders {
  const [count, height, width] = header.dims;
  if (header.dims.length !== 3 || count === undefined || !height || !width)
    throw new DatasetError(`${name}: images must be [count, rows, columns]`);
  checkDeclaredSize(name, { images: count, bytes: header.dataBytes }, limits);
  return { count, height, width };
}

function checkLabelsHeader(name: string, header: IdxHeader, images: number): void {
  if (header.dims.length !== 1) throw new DatasetError(`${name}: labels must be one-dimensional`);
  if (header.dims[0] !== images)
    throw new DatasetError(`${images} images but ${header.dims[0]} labels`);
}

/** A plain (not gzipped) file must hold exactly what its header declares: a stat tells. */
async function checkPlainSize(found: FoundFile, header: IdxHeader): Promise<void> {
  if (found.name.endsWith('.gz')) return;
  const { size } = await stat(found.file);
  const declared = header.headerBytes + header.dataBytes;
  if (size !== declared)
    throw new DatasetError(`${found.name}: ${size} bytes, its header declares ${declared}`);
}

/**
 * What the API checks before it accepts a run: the headers of both files (a `.gz` inflated only
 * as far as its header), their sizes against the limits and each other, and the class count,
 * found by streaming the labels (at most DATA_MAX_IMAGES bytes) without keeping them.
 */
export async function inspectIdxSplit(
  folder: DataFolder,
  split: DataSplit,
  limits: DataLimits,
): Promise<{ numClasses: number }> {
  const names = idxFiles(split);
  const images = await findIdxFile(folder, names.images);
  const imagesHeader = await readIdxHeader(images.file);
  const { count } = checkImagesHeader(images.name, imagesHeader, limits);
  await checkPlainSize(images, imagesHeader);
  const labels = await findIdxFile(folder, names.labels);
  let top = 0;
  await readIdxStream(idxByteStream(labels.file), labels.name, {
    check: (found) => checkLabelsHeader(labels.name, found, count),
    visit(chunk) {
      for (let i = 0; i < chunk.length; i++) top = Math.max(top, chunk[i] as number);
    },
  });
  return { numClasses: count === 0 ? 0 : top + 1 };
}

/** A whole split in memory (MNIST's 60,000 images are 47 MB), within the data limits. */
export async function openIdxSource(
  folder: DataFolder,
  split: DataSplit,
  limits: DataLimits,
): Promise<ImageSource> {
  const names = idxFiles(split);
  const imagesFile = await findIdxFile(folder, names.images);
  let shape: IdxSplitHeaders = { count: 0, height: 0, width: 0 };
  const images = await readIdxFile(imagesFile.file, (header) => {
    shape = checkImagesHeader(imagesFile.name, header, limits);
  });
  const labelsFile = await findIdxFile(folder, names.labels);
  const { data: labels } = await readIdxFile(labelsFile.file, (header) =>
    checkLabelsHeader(labelsFile.name, header, shape.count),
  );
  const { height, width } = shape;
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
