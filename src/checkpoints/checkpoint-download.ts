/**
 * Fetches one checkpoint (`runs/<runId>/step-<n>`) from the artifact store into a local
 * directory that appears complete or not at all: every file is checked against the size and
 * SHA-256 in the checkpoint's manifest as well as the store's own checksum.
 */
import path from 'node:path';
import { CheckpointError, publishDirectory, writeFileSynced } from './checkpoint-files.js';
import { CHECKPOINT_FILES, parseCheckpointManifest } from './checkpoint-manifest.js';
import {
  ArtifactChecksumError,
  ArtifactNotFoundError,
  type ArtifactStore,
} from '../artifacts/artifact-store.js';

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

/**
 * Downloads the checkpoint at `location` into `dir` (which must not exist). Throws
 * {@link CheckpointError}, {@link ArtifactNotFoundError} or {@link ArtifactChecksumError} when
 * the stored checkpoint is incomplete or corrupt; other errors mean the store is unreachable.
 */
export async function downloadCheckpoint(
  artifacts: ArtifactStore,
  location: string,
  dir: string,
): Promise<void> {
  const manifestBytes = await readAll(
    await artifacts.get(`${location}/${CHECKPOINT_FILES.manifest}`),
  );
  const manifest = parseCheckpointManifest(location, manifestBytes.toString('utf8'));
  await publishDirectory(dir, async (tmp) => {
    for (const file of manifest.files) {
      const got = await writeFileSynced(
        path.join(tmp, file.path),
        await artifacts.get(`${location}/${file.path}`),
      );
      if (got.sha256 !== file.sha256 || got.bytes !== file.bytes) {
        throw new CheckpointError(
          `checkpoint ${location}: ${file.path} does not match its manifest`,
        );
      }
    }
    await writeFileSynced(path.join(tmp, CHECKPOINT_FILES.manifest), [manifestBytes]);
  });
}

/** True for the errors that say the stored checkpoint itself is unusable. */
export function isUnusableCheckpoint(error: unknown): error is Error {
  return (
    error instanceof CheckpointError ||
    error instanceof ArtifactNotFoundError ||
    error instanceof ArtifactChecksumError
  );
}
