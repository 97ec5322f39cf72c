/**
 * Durable file writes: fsync each file, fsync the directory that holds it, so what was written
 * survives a power cut. Knows nothing about what the files hold (checkpoints, stored artifacts).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';

/** Size and content hash of a written file. */
export interface FileDigest {
  bytes: number;
  /** Lower-case hex SHA-256. */
  sha256: string;
}

/** True when `error` is a Node.js system error with one of `codes` (`ENOENT`, `EEXIST`). */
export function isErrno(error: unknown, ...codes: string[]): boolean {
  return error instanceof Error && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

/** Creates `file` (which must not exist), writes the chunks in order and fsyncs it. */
export async function writeFileSynced(
  file: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<FileDigest> {
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
  try {
    for await (const chunk of chunks) {
      // A short write is possible for large buffers; loop until the chunk is on disk.
      for (let done = 0; done < chunk.byteLength;) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
        done += bytesWritten;
      }
      hash.update(chunk);
      bytes += chunk.byteLength;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Fsyncs a directory so the entries created or renamed in it are durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync, and NTFS journals metadata anyway.
  if (process.platform === 'win32') return;
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Whether `file` exists (any other stat failure is thrown). */
export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

/** `mkdir -p` that also makes the new directory entries durable. */
export async function makeDirectoryDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // Every directory from the first one created down to `dir` gained an entry.
  const created = path.relative(path.dirname(first), dir).split(path.sep);
  let current = path.dirname(first);
  await fsyncDirectory(current);
  for (const part of created) {
    current = path.join(current, part);
    await fsyncDirectory(current);
  }
}
