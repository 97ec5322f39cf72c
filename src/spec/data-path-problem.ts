/**
 * A submitted `dataset.path` checked as a string, before anything touches the disk: the API's
 * schemas and src/data's resolver apply the same rule (src/data/data-path.ts checks it on disk).
 */
import path from 'node:path';

/** The longest file or folder name Linux and macOS file systems hold (NAME_MAX), in bytes. */
export const DATA_PATH_SEGMENT_MAX_BYTES = 255;

/** Why `relative` is not an acceptable data set path as written, or undefined when it is. */
export function dataPathProblem(relative: string): string | undefined {
  if (relative.includes('\0')) return 'contains a NUL byte';
  if (/%[0-9a-fA-F]{2}/.test(relative)) return 'contains percent-encoding; give the plain path';
  if (relative.includes('\\')) return 'contains a backslash; use /';
  if (path.isAbsolute(relative) || path.win32.isAbsolute(relative))
    return 'must be relative to DATA_ROOT';
  const segments = relative.split('/');
  if (segments.some((segment) => segment === '..')) return 'contains a `..` segment';
  const encoder = new TextEncoder();
  if (segments.some((s) => encoder.encode(s).length > DATA_PATH_SEGMENT_MAX_BYTES))
    return `has a name longer than ${DATA_PATH_SEGMENT_MAX_BYTES} bytes`;
  return undefined;
}
