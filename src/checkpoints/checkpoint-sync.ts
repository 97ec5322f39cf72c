/**
 * Moves checkpoints between this host's scratch disk and the shared artifact store, in the
 * worker's parent process (the training child only ever sees local directories):
 * - after the child reports a checkpoint written under {@link CheckpointSync.writeDir}, upload
 *   its files (manifest.json last, so a checkpoint whose manifest is in the store is complete)
 *   and drop the local copy;
 * - before a job starts, download the newest checkpoint that arrives intact into a scratch
 *   directory for the child to resume from.
 *
 * A checkpoint's location in the store (and in its Checkpoint row): checkpoint-location.ts.
 */
import { rm } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import { downloadCheckpoint, isUnusableCheckpoint } from './checkpoint-download.js';
import { CheckpointError } from './checkpoint-files.js';
import { CHECKPOINT_FILES, type SavedCheckpoint } from './checkpoint-manifest.js';
import {
  checkpointLocation,
  checkpointLocationOfKey,
  runCheckpointsPrefix,
} from './checkpoint-location.js';

export interface CheckpointSyncOptions {
  artifacts: ArtifactStore;
  /** This host's own directory (`SCRATCH_ROOT`). */
  scratchRoot: string;
}

/** What the parent hands the child to resume from, and how to name it back in the store. */
export interface ResumeCheckpoints {
  /** Local checkpoint directories, newest first (the child's `resumeFrom`). */
  dirs: string[];
  /** The store location a local directory was downloaded from. */
  locationOf(dir: string): string | undefined;
  /** Locations that could not be downloaded intact (missing or corrupt files), with why. */
  unusable: Array<{ location: string; reason: string }>;
}

/**
 * Uploads a checkpoint the child has written and fsynced, checking each file arrives with
 * the SHA-256 the save recorded (the manifest last, against the save's digest: nothing is
 * read back to learn what was saved), then removes the local copy. Returns its location.
 */
async function uploadCheckpoint(
  artifacts: ArtifactStore,
  runId: string,
  saved: SavedCheckpoint & { step: number },
): Promise<string> {
  const location = checkpointLocation(runId, saved.step);
  const put = (file: string) =>
    artifacts.put(`${location}/${file}`, createReadStream(path.join(saved.location, file)));
  for (const file of saved.files) {
    const stored = await put(file.path);
    if (stored.sha256 !== file.sha256 || stored.bytes !== file.bytes) {
      throw new CheckpointError(
        `checkpoint ${saved.location}: ${file.path} changed on disk before it was uploaded`,
      );
    }
  }
  const manifest = await put(CHECKPOINT_FILES.manifest);
  if (manifest.sha256 !== saved.sha256) {
    throw new CheckpointError(
      `checkpoint ${saved.location}: manifest.json changed on disk before it was uploaded`,
    );
  }
  await rm(saved.location, { recursive: true, force: true });
  return location;
}

export function createCheckpointSync({ artifacts, scratchRoot }: CheckpointSyncOptions) {
  const root = path.resolve(scratchRoot);
  const writeDir = (runId: string) => path.join(root, 'runs', runId);
  const resumeDir = (runId: string) => path.join(root, 'resume', runId);

  return {
    /** Where this host's training child writes the run's checkpoints before upload. */
    writeDir,

    /** Uploads a checkpoint the child saved, then removes the local copy; returns its location. */
    upload: (runId: string, saved: SavedCheckpoint & { step: number }) =>
      uploadCheckpoint(artifacts, runId, saved),

    /**
     * Downloads the newest of `locations` (newest first) that arrives intact. Locations whose
     * files are missing or fail their checksums are reported in `unusable` (the caller forgets
     * them); other errors (the store is unreachable) are thrown, so the job is retried.
     */
    async fetchForResume(runId: string, locations: string[]): Promise<ResumeCheckpoints> {
      const base = resumeDir(runId);
      await rm(base, { recursive: true, force: true });
      const unusable: ResumeCheckpoints['unusable'] = [];
      const fetched = new Map<string, string>();
      for (const location of locations) {
        const dir = path.join(base, path.basename(location));
        try {
          await downloadCheckpoint(artifacts, location, dir);
          fetched.set(dir, location);
          break;
        } catch (error) {
          if (!isUnusableCheckpoint(error)) throw error;
          unusable.push({ location, reason: error.message });
        }
      }
      return { dirs: [...fetched.keys()], locationOf: (dir) => fetched.get(dir), unusable };
    },

    /**
     * After the job, uploads done: removes this host's scratch files of the run and, in the
     * store, any checkpoint of the run that has no row (`recorded`: the locations that do). Such
     * bytes are left by a worker that died between an upload and its row, or by a row deleted
     * while its bytes could not be. Without `recorded` only the scratch files go.
     */
    async cleanup(runId: string, recorded: string[] | undefined): Promise<void> {
      await rm(writeDir(runId), { recursive: true, force: true });
      await rm(resumeDir(runId), { recursive: true, force: true });
      // Unknown (the attempt lost the run): the store belongs to the attempt that owns it now.
      if (recorded === undefined) return;
      const keep = new Set(recorded);
      const stored = new Set(
        (await artifacts.list(runCheckpointsPrefix(runId))).map((a) =>
          checkpointLocationOfKey(a.key),
        ),
      );
      for (const location of stored) {
        if (location !== undefined && !keep.has(location)) await artifacts.delete(location);
      }
    },
  };
}

export type CheckpointSync = ReturnType<typeof createCheckpointSync>;
