/**
 * The file-system half of checkpointing: an all-or-nothing directory publish, and reads checked
 * against a recorded size and SHA-256 (durable writes: src/files/durable-files.ts). Knows
 * nothing about tensors.
 *
 * Durability follows the usual POSIX recipe: fsync each file, fsync the directory that holds
 * it, rename, then fsync the parent so the rename itself survives a power cut.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  exists,
  fsyncDirectory,
  isErrno,
  makeDirectoryDurable,
  type FileDigest,
} from '../files/durable-files.js';

export { writeFileSynced, type FileDigest } from '../files/durable-files.js';

/**
 * A checkpoint that cannot be written or loaded as asked: the target exists, a file is missing,
 * torn or corrupt, or it does not fit the model. Retrying will not help, so the worker treats it
 * as a permanent failure. I/O faults (disk full, EIO) are thrown as they are.
 */
export class CheckpointError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckpointError';
  }
}

/**
 * Builds a directory under a temporary sibling name (`<dir>.tmp-<pid>-<random>`), then renames it
 * to `dir`, so readers see either no directory or a complete one. `fill` writes the files (each
 * fsynced, e.g. with {@link writeFileSynced}). Refuses with {@link CheckpointError} if `dir`
 * exists; on any failure the temporary directory is removed. Creates missing parents.
 */
export async function publishDirectory<T>(
  dir: string,
  fill: (tmp: string) => Promise<T>,
): Promise<T> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  if (await exists(target)) {
    throw new CheckpointError(
      `checkpoint directory ${target} already exists; refusing to overwrite it`,
    );
  }
  await makeDirectoryDurable(parent);
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  await mkdir(tmp);
  try {
    const result = await fill(tmp);
    await fsyncDirectory(tmp);
    // rename(2) replaces an existing *empty* directory silently, so the check above is what
    // protects a racing writer's empty target; a non-empty one fails here instead.
    try {
      await rename(tmp, target);
    } catch (error) {
      if (isErrno(error, 'EEXIST', 'ENOTEMPTY', 'EISDIR', 'ENOTDIR')) {
        throw new CheckpointError(
          `checkpoint directory ${target} already exists; refusing to overwrite it`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    await fsyncDirectory(parent);
    return result;
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Reads `name` from `dir` and checks it against the recorded size and SHA-256, throwing a
 * {@link CheckpointError} that names the file when it is missing, truncated or altered.
 */
export async function readVerifiedFile(
  dir: string,
  name: string,
  expected: FileDigest,
): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path.join(dir, name));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) {
      throw new CheckpointError(
        `checkpoint ${dir} is incomplete: ${name} is listed in manifest.json but missing`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  if (data.byteLength !== expected.bytes) {
    throw new CheckpointError(
      `checkpoint ${dir} is corrupt: ${name} has ${data.byteLength} bytes, manifest.json says ${expected.bytes}`,
    );
  }
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (sha256 !== expected.sha256) {
    throw new CheckpointError(
      `checkpoint ${dir} is corrupt: ${name} does not match its SHA-256 in manifest.json`,
    );
  }
  return data;
}
