/**
 * A folder of image files, one sub-folder per class: `path/<class>/*.{jpg,jpeg,png,webp}`, or
 * `path/train/<class>` and `path/val/<class>` (the `val` folder is the `test` split). Classes
 * are the sub-folder names in sorted order, so every run (and every eval of it) numbers them the
 * same way. Images are decoded with sharp, capped in size (a 24-megapixel photo is not decoded
 * at full size to make a 224x224 input) and converted to the wanted channels. Every split and
 * class folder, and every symlinked image, must have its real path inside DATA_ROOT.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { realPathInside, type DataFolder } from './data-path.js';
import type { DataSplit } from './idx-source.js';
import { DatasetError, type ImageSource, type RawImage } from './raw-image.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

/** Plain code-unit order: the same on every machine, whatever its locale. */
function codeUnitOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A class (or split) folder: its name in its parent, and its real path inside DATA_ROOT. */
interface Subfolder {
  name: string;
  dir: string;
}

/**
 * The folders in `folder` (symlinks followed, dot-names skipped), sorted: each one's real path
 * must lie inside DATA_ROOT, or the data set is refused naming it.
 */
async function subfolders(folder: DataFolder): Promise<Subfolder[]> {
  const entries = await readdir(folder.dir, { withFileTypes: true });
  const names = entries
    .filter((e) => (e.isDirectory() || e.isSymbolicLink()) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(codeUnitOrder);
  const found: Subfolder[] = [];
  for (const name of names) {
    const dir = await realPathInside(folder.realRoot, folder.dir, name);
    if ((await stat(dir)).isDirectory()) found.push({ name, dir });
  }
  return found;
}

/** The folder holding a split's class folders (checked, like them, to stay inside DATA_ROOT). */
export async function imageFolderSplitDir(
  folder: DataFolder,
  split: DataSplit,
): Promise<DataFolder> {
  const top = await subfolders(folder);
  const train = top.find((f) => f.name === 'train');
  const val = top.find((f) => f.name === 'val');
  if (train && val)
    return { realRoot: folder.realRoot, dir: (split === 'train' ? train : val).dir };
  // A flat folder is one split: it serves whichever the run asks for (an eval names its own).
  return folder;
}

/** The sorted class names of a split (what the submission check reads). */
export async function imageFolderClasses(folder: DataFolder, split: DataSplit): Promise<string[]> {
  return (await subfolders(await imageFolderSplitDir(folder, split))).map((f) => f.name);
}

export interface ImageFolderOptions {
  channels: 1 | 3;
  /** Longest side images are shrunk to before cropping (never enlarged). */
  maxSide: number;
  /** Images the split may hold (DATA_MAX_IMAGES). */
  maxImages: number;
}

export async function openImageFolderSource(
  folder: DataFolder,
  split: DataSplit,
  options: ImageFolderOptions,
): Promise<ImageSource> {
  const splitFolder = await imageFolderSplitDir(folder, split);
  const classDirs = await subfolders(splitFolder);
  const classes = classDirs.map((f) => f.name);
  if (classes.length === 0) throw new DatasetError(`no class folders for the ${split} split`);
  /** Each image's file, and its name inside the split for messages. */
  const files: Array<{ file: string; shown: string }> = [];
  const labels: number[] = [];
  for (const [label, { name: className, dir: classDir }] of classDirs.entries()) {
    const entries = await readdir(classDir, { withFileTypes: true });
    entries.sort((a, b) => codeUnitOrder(a.name, b.name));
    for (const entry of entries) {
      if (!IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) continue;
      if (files.length === options.maxImages)
        throw new DatasetError(
          `the ${split} split holds more than ${options.maxImages} images (DATA_MAX_IMAGES)`,
        );
      files.push({
        file: entry.isSymbolicLink()
          ? await realPathInside(folder.realRoot, classDir, entry.name)
          : path.join(classDir, entry.name),
        shown: `${className}/${entry.name}`,
      });
      labels.push(label);
    }
  }
  if (files.length === 0) throw new DatasetError('no .jpg, .jpeg, .png or .webp files found');
  return {
    classes,
    labels: Int32Array.from(labels),
    async read(index: number): Promise<RawImage> {
      const { file, shown } = files[index] as { file: string; shown: string };
      try {
        let image = sharp(file, { failOn: 'error' })
          .rotate() // EXIF orientation, as a viewer shows the photo
          .resize(options.maxSide, options.maxSide, { fit: 'inside', withoutEnlargement: true })
          .removeAlpha();
        image = options.channels === 1 ? image.greyscale() : image.toColourspace('srgb');
        const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
        const channels = info.channels === 1 ? 1 : 3;
        if (info.channels !== channels)
          throw new DatasetError(`decoded to ${info.channels} channels`);
        return { data: new Uint8Array(data), width: info.width, height: info.height, channels };
      } catch (error) {
        // sharp's messages may carry the file's path: only its name in the split is shown.
        const reason = (error instanceof Error ? error.message : String(error))
          .split(file)
          .join(shown);
        throw new DatasetError(`cannot decode ${shown}: ${reason}`);
      }
    },
  };
}
