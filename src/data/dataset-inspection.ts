/**
 * The cheap look at a file data set the API takes before it accepts a run: the path and every
 * folder and file used stay inside DATA_ROOT (else {@link DataPathError}), exist, hold what their
 * format needs within the data limits, and have the classes the run expects (else
 * {@link DatasetError}); each message names `dataset.path`. Headers, sizes and folder names are
 * read; images are not, and no file is read whole: a gzipped IDX file is inflated only as far
 * as its header (labels are streamed, at most DATA_MAX_IMAGES bytes, to count the classes), all
 * of it asynchronously, so the API's event loop is never held. A corrupt image is found when
 * the run starts, and fails it then.
 */
import { CIFAR10_CLASSES, findCifar10Files } from './cifar10-source.js';
import type { DataLimits } from './data-limits.js';
import { resolveDataFolder } from './data-path.js';
import { datasetProblem } from './dataset-problem.js';
import { inspectIdxSplit, type DataSplit } from './idx-source.js';
import { imageFolderClasses } from './image-folder-source.js';
import type { FileDatasetLocation } from './open-image-source.js';
import { DatasetError } from './raw-image.js';

export interface DatasetInspection {
  /** Class names found (index = label for idx and cifar10; sorted folder names otherwise). */
  classes: string[];
}

export async function inspectDataset(
  dataRoot: string,
  location: FileDatasetLocation,
  split: DataSplit,
  limits: DataLimits,
): Promise<DatasetInspection> {
  try {
    return await inspectFolder(dataRoot, location, split, limits);
  } catch (error) {
    throw datasetProblem(error, location.path);
  }
}

async function inspectFolder(
  dataRoot: string,
  location: FileDatasetLocation,
  split: DataSplit,
  limits: DataLimits,
): Promise<DatasetInspection> {
  const folder = await resolveDataFolder(dataRoot, location.path);
  switch (location.format) {
    case 'idx': {
      const { numClasses } = await inspectIdxSplit(folder, split, limits);
      return { classes: Array.from({ length: numClasses }, (_, i) => String(i)) };
    }
    case 'cifar10': {
      await findCifar10Files(folder, split, limits);
      return { classes: CIFAR10_CLASSES };
    }
    case 'imagefolder': {
      const classes = await imageFolderClasses(folder, split);
      if (classes.length === 0)
        throw new DatasetError(`has no class folders for the ${split} split`);
      return { classes };
    }
  }
}
