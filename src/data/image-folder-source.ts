/**
 * A folder of image files, one sub-folder per class: `path/<class>/*.{jpg,jpeg,png,webp}`, or
 * `path/train/<class>` and `path/val/<class>` (the `val` folder is the `test` split). Classes
 * are the sub-folder names in sorted order, so every run (and every eval of it) numbers them the
 * same way. Images are decoded with sharp, capped in size (a 24-megapixel photo is not decoded
 * at full size to make a 224x224 input) and converted to the wanted channels.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { assertInsideRoot } from './data-path.js';
import type { DataSplit } from './idx-source.js';
import { DatasetError, type ImageSource, type RawImage } from './raw-image.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

/** Plain code-unit order: the same on every machine, whatever its locale. */
function sorted(names: string[]): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function subfolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return sorted(
    entries.filter((e) => e.isDirectory() || e.isSymbolicLink()).map((e) => e.name),
  ).filter((name) => !name.startsWith('.'));
}

/** The folder holding a split's class folders. */
export async function imageFolderSplitDir(dir: string, split: DataSplit): Promise<string> {
  const top = await subfolders(dir);
  const hasSplits = top.includes('train') && top.includes('val');
  if (hasSplits) return path.join(dir, split === 'train' ? 'train' : 'val');
  // A flat folder is one split: it serves whichever the run asks for (an eval names its own).
  return dir;
}

/** The sorted class names of a split (what the submission check reads). */
export async function imageFolderClasses(dir: string, split: DataSplit): Promise<string[]> {
  return subfolders(await imageFolderSplitDir(dir, split));
}

export interface ImageFolderOptions {
  /** Real DATA_ROOT: every file (symlinks followed) must lie under it. */
  root: string;
  channels: 1 | 3;
  /** Longest side images are shrunk to before cropping (never enlarged). */
  maxSide: number;
}

export async function openImageFolderSource(
  dir: string,
  split: DataSplit,
  options: ImageFolderOptions,
): Promise<ImageSource> {
  const splitDir = await imageFolderSplitDir(dir, split);
  const classes = await subfolders(splitDir);
  if (classes.length === 0)
    throw new DatasetError(`no class folders in ${path.basename(splitDir)}`);
  const files: string[] = [];
  const labels: number[] = [];
  for (const [label, name] of classes.entries()) {
    const classDir = await assertInsideRoot(options.root, path.join(splitDir, name));
    const entries = await readdir(classDir, { withFileTypes: true });
    for (const entry of sorted(entries.map((e) => e.name))) {
      if (!IMAGE_EXTENSIONS.includes(path.extname(entry).toLowerCase())) continue;
      const file = path.join(classDir, entry);
      const found = entries.find((e) => e.name === entry);
      files.push(found?.isSymbolicLink() ? await assertInsideRoot(options.root, file) : file);
      labels.push(label);
    }
  }
  if (files.length === 0) throw new DatasetError('no .jpg, .jpeg, .png or .webp files found');
  return {
    classes,
    labels: Int32Array.from(labels),
    async read(index: number): Promise<RawImage> {
      const file = files[index] as string;
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
        const reason = error instanceof Error ? error.message : String(error);
        throw new DatasetError(`cannot decode ${path.relative(dir, file)}: ${reason}`);
      }
    },
  };
}
