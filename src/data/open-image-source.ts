/**
 * Opens a data set's split by its format, after checking its path stays inside DATA_ROOT, within
 * the data limits. Every refusal — the path, the files, the limits, what the file system says —
 * is a {@link DatasetError} naming `dataset.path`: a run fed such a data set cannot retry.
 */
import { openCifar10Source } from './cifar10-source.js';
import type { DataLimits } from './data-limits.js';
import { DataPathError, resolveDataFolder } from './data-path.js';
import { datasetProblem } from './dataset-problem.js';
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
  /** DATA_MAX_BYTES and DATA_MAX_IMAGES. */
  limits: DataLimits;
}

export async function openImageSource(
  location: FileDatasetLocation,
  split: DataSplit,
  options: SourceOptions,
): Promise<ImageSource> {
  try {
    const folder = await resolveDataFolder(options.dataRoot, location.path);
    switch (location.format) {
      case 'idx':
        return await openIdxSource(folder, split, options.limits);
      case 'cifar10':
        return await openCifar10Source(folder, split, options.limits);
      case 'imagefolder':
        return await openImageFolderSource(folder, split, {
          channels: options.channels,
          // Room for an 8%-area crop to keep detail without decoding huge photos in full.
          maxSide: Math.max(256, 3 * options.inputSize),
          maxImages: options.limits.maxImages,
        });
    }
  } catch (error) {
    const problem = datasetProblem(error, location.path);
    // Missing or escaping: either way the run cannot succeed by trying again.
    throw problem instanceof DataPathError ? new DatasetError(problem.message) : problem;
  }
}
