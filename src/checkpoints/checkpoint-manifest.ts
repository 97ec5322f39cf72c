/**
 * A checkpoint directory's file names and its manifest.json (format, version, each file's size
 * and SHA-256). Kept apart from checkpoint.ts so code that only moves checkpoints around (the
 * worker's parent process, checkpoint-sync.ts) does not load TensorFlow.js.
 */
import { z } from 'zod';
import { CheckpointError, type FileDigest } from './checkpoint-files.js';

/** Identifies the layout; bump {@link CHECKPOINT_VERSION} on any incompatible change. */
export const CHECKPOINT_FORMAT = 'googlenet-queue/checkpoint';
export const CHECKPOINT_VERSION = 1;

/** File names inside a checkpoint directory. */
export const CHECKPOINT_FILES = {
  weights: 'weights.bin',
  weightSpecs: 'weights.json',
  optimizer: 'optimizer.bin',
  optimizerSpecs: 'optimizer.json',
  state: 'state.json',
  manifest: 'manifest.json',
} as const;

/** One file of a checkpoint as the manifest records it. */
export interface CheckpointFile extends FileDigest {
  /** File name inside the checkpoint directory. */
  path: string;
}

/**
 * A checkpoint as its save left it on local disk: the directory, its files as the manifest lists
 * them, and the digest of the whole (the manifest's SHA-256, which covers every file's).
 */
export interface SavedCheckpoint {
  /** The checkpoint's directory. */
  location: string;
  files: CheckpointFile[];
  /** Bytes of every file, manifest.json included. */
  bytes: number;
  /** SHA-256 of manifest.json. */
  sha256: string;
}

/** Contents of `manifest.json`. */
export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** ISO 8601 time the checkpoint was written. */
  createdAt: string;
  /** Every file except manifest.json itself. */
  files: CheckpointFile[];
}

export const fileNameSchema = z.string().regex(/^[\w.-]+$/, 'a plain file name');

export const manifestSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(CHECKPOINT_VERSION),
  createdAt: z.string(),
  files: z.array(
    z.object({ path: fileNameSchema, bytes: z.number().int().min(0), sha256: z.string() }),
  ),
});

/**
 * Parses a checkpoint's manifest.json; throws {@link CheckpointError} naming `where` if the text
 * is not one.
 */
export function parseCheckpointManifest(where: string, text: string): CheckpointManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`checkpoint ${where} is corrupt: manifest.json is not valid JSON`, {
      cause: error,
    });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw new CheckpointError(`checkpoint ${where} is invalid: manifest.json: ${issues}`);
  }
  return parsed.data;
}
