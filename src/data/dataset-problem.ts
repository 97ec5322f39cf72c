/**
 * A data set's problems in words a client may read, each naming `dataset.path`: the readers'
 * own refusals, and the file system's (a loop of symlinks, a path through a file, a name too
 * long) told without the resolved path — which could name a place outside DATA_ROOT — and
 * without the raw error code. Anything else (an I/O fault, too many open files) is the
 * server's problem and goes on as it is.
 */
import { DataPathError } from './data-path.js';
import { DatasetError } from './raw-image.js';

const FS_PROBLEMS: Record<string, string> = {
  ENOENT: 'does not exist under DATA_ROOT',
  ENOTDIR: 'goes through a file as if it were a folder',
  ELOOP: 'leads into a loop of symbolic links',
  ENAMETOOLONG: 'is too long a path for the file system',
  EACCES: 'cannot be read by the server (permission denied)',
  EPERM: 'cannot be read by the server (permission denied)',
  EISDIR: 'holds a folder where a file belongs',
};

/** How much of a submitted path a message repeats. */
const SHOWN_CHARS = 100;

/**
 * `error`, thrown while reading the data set at `relative`, as a {@link DataPathError} (it
 * leaves DATA_ROOT) or {@link DatasetError} (it cannot be used) whose message starts
 * `dataset.path '<relative>':`; any other error unchanged.
 */
export function datasetProblem(error: unknown, relative: string): unknown {
  const shown = relative.length > SHOWN_CHARS ? `${relative.slice(0, SHOWN_CHARS)}…` : relative;
  const prefix = `dataset.path '${shown}':`;
  if (error instanceof DataPathError) return new DataPathError(`${prefix} ${error.message}`);
  if (error instanceof DatasetError) return new DatasetError(`${prefix} ${error.message}`);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const problem = code === undefined ? undefined : FS_PROBLEMS[code];
  return problem ? new DatasetError(`${prefix} ${problem}`) : error;
}
