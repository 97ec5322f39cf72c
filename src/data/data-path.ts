/**
 * Where a data set may be read from: only inside DATA_ROOT. A submitted `dataset.path` is
 * checked twice — as a string (no NUL, not absolute, no `..` segment, no percent-encoding that a
 * later layer could decode into one) and on disk (its real path, symlinks followed, must stay
 * under the real DATA_ROOT). Nothing outside the root is ever opened.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { dataPathProblem } from '../spec/data-path-problem.js';

/** A data set path that leaves DATA_ROOT or cannot be a path at all. */
export class DataPathError extends Error {
  override name = 'DataPathError';
}

/** True when `inner` is `outer` or below it (both absolute, resolved). */
export function isInside(outer: string, inner: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The real absolute path of `relative` under `root`, following symlinks; throws
 * {@link DataPathError} when it leaves the root, and the fs error (ENOENT) when it does not exist.
 */
export async function resolveDataPath(root: string, relative: string): Promise<string> {
  const problem = dataPathProblem(relative);
  if (problem) throw new DataPathError(`dataset.path ${problem}`);
  const realRoot = await realpath(root);
  const real = await realpath(path.join(realRoot, relative));
  if (!isInside(realRoot, real)) throw new DataPathError('dataset.path leads outside DATA_ROOT');
  return real;
}

/** Checks that a file found inside a data set (a symlinked image) still lies under the root. */
export async function assertInsideRoot(root: string, file: string): Promise<string> {
  const realRoot = await realpath(root);
  const real = await realpath(file);
  if (!isInside(realRoot, real))
    throw new DataPathError(`${path.relative(realRoot, file)} leads outside DATA_ROOT`);
  return real;
}
