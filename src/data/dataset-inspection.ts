/**
 * The cheap look at a file data set the API takes before it accepts a run: the path stays inside
 * DATA_ROOT (else {@link DataPathError}), exists, holds what its format needs, and has the
 * classes the run expects (else {@link DatasetError}). Labels are read (small files), images are
 * not: a corrupt image is found when the run starts, and fails it then.
 */
import { stat } from 'node:fs/promises';
import { CIFAR10_CLASSES, missingCifar10Files } from './cifar10-source.js';
import { resolveDataPath } from './data-path.js';
import { findIdxFile, idxFiles, readIdxLabels, type DataSplit } from './idx-source.js';
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
): Promise<DatasetInspection> {
  let dir: string;
  try {
    dir = await resolveDataPath(dataRoot, location.path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new DatasetError(`dataset.path '${location.path}' does not exist under DATA_ROOT`);
    throw error;
  }
  if (!(await stat(dir)).isDirectory())
    throw new DatasetError(`dataset.path '${location.path}' is not a folder`);
  switch (location.format) {
    case 'idx': {
      const names = idxFiles(split);
      if (!(await findIdxFile(dir, names.images)))
        throw new DatasetError(`${names.images} (or .gz) not found in '${location.path}'`);
      const labels = await readIdxLabels(dir, split);
      const count = labels.reduce((m, l) => Math.max(m, l), 0) + 1;
      return { classes: Array.from({ length: count }, (_, i) => String(i)) };
    }
    case 'cifar10': {
      const missing = await missingCifar10Files(dir, split);
      if (missing.length > 0)
        throw new DatasetError(`'${location.path}' lacks ${missing.join(', ')}`);
      return { classes: CIFAR10_CLASSES };
    }
    case 'imagefolder': {
      const classes = await imageFolderClasses(dir, split);
      if (classes.length === 0)
        throw new DatasetError(`'${location.path}' has no class folders for the ${split} split`);
      return { classes };
    }
  }
}
