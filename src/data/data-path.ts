/**
 * Where a data set may be read from: only inside DATA_ROOT. A submitted `dataset.path` is
 * checked twice — as a string (no NUL, not absolute, no `..` segment, no percent-encoding that a
 * later layer could decode into one, no name longer than a file system holds) and on disk (its
 * real path, symlinks followed, must stay under the real DATA_ROOT). Every folder and file a
 * reader opens inside it is checked the same way ({@link realPathInside}), so a split folder or
 * a file symlinked out of the root is refused too. Nothing outside the root is ever opened, and
 * no message names a resolved path: only names inside the data set.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { dataPathProblem } from '../spec/data-path-problem.js';
import { DatasetError } from './raw-image.js';

/** A data set path that leaves DATA_ROOT or cannot be a path at all. */
export class DataPathError extends Error {
  override name = 'DataPathError';
}

/** A data set folder, found: its real path, and the real DATA_ROOT it must stay under. */
export interface DataFolder {
  realRoot: string;
  dir: string;
}

/** True when `inner` is `outer` or below it (both absolute, resolved). */
export function isInside(outer: string, inner: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The real absolute path of `relative` under `root`, following symlinks; throws
 * {@link DataPathError} when it leaves the root, and the fs error (ENOENT, ELOOP, ENOTDIR) when
 * the file system cannot follow it.
 */
export async function resolveDataPath(root: string, relative: string): Promise<string> {
  const problem = dataPathProblem(relative);
  if (problem) throw new DataPathError(problem);
  const realRoot = await realpath(root);
  const real = await realpath(path.join(realRoot, relative));
  if (!isInside(realRoot, real)) throw new DataPathError('leads outside DATA_ROOT');
  return real;
}

/** The data set folder at `relative` under `root` ({@link resolveDataPath}), a folder. */
export async function resolveDataFolder(root: string, relative: string): Promise<DataFolder> {
  const realRoot = await realpath(root);
  const dir = await resolveDataPath(realRoot, relative);
  if (!(await stat(dir)).isDirectory()) throw new DatasetError('is not a folder');
  return { realRoot, dir };
}

/**
 * The real path of `name` in the data set folder `dir` (itself real and inside `realRoot`):
 * throws {@link DataPathError} naming `name` (never where it leads) when it leaves the root.
 */
export async function realPathInside(realRoot: string, dir: string, name: string): Promise<string> {
  const real = await realpath(path.join(dir, name));
  if (!isInside(realRoot, real)) throw new DataPathError(`${name} leads outside DATA_ROOT`);
  return real;
}
