/** Opens a data set's split by its format, after checking its path stays inside DATA_ROOT. */
import { realpath } from 'node:fs/promises';
import { openCifar10Source } from './cifar10-source.js';
import { resolveDataPath } from './data-path.js';
import { openIdxSource, type DataSplit } from './idx-source.js';
import { openImageFolderSource } from './image-folder-source.js';
import { DatasetError, type ImageSource } from './raw-image.js';

export type FileFormat = 'idx' | 'cifar10' | 'imagefolder';

export interface FileDatasetLocation {
  format: FileFormat;
  /** Relative to DATA_ROOT. */
  path: string;
}

export interface SourceOptions {
  dataRoot: string;
  inputSize: number;
  channels: 1 | 3;
}

export async function openImageSource(
  location: FileDatasetLocation,
  split: DataSplit,
  options: SourceOptions,
): Promise<ImageSource> {
  let dir: string;
  try {
    dir = await resolveDataPath(options.dataRoot, location.path);
  } catch (error) {
    // Missing or escaping: either way the run cannot succeed by trying again.
    throw new DatasetError(error instanceof Error ? error.message : String(error));
  }
  switch (location.format) {
    case 'idx':
      return openIdxSource(dir, split);
    case 'cifar10':
      return openCifar10Source(dir, split);
    case 'imagefolder':
      return openImageFolderSource(dir, split, {
        root: await realpath(options.dataRoot),
        channels: options.channels,
        // Room for an 8%-area crop to keep detail without decoding huge photos in full.
        maxSide: Math.max(256, 3 * options.inputSize),
      });
  }
}
