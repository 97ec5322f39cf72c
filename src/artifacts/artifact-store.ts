/**
 * A key → bytes store that every worker and API replica can reach: one small interface, three
 * backends (postgres, fs, s3; see create-artifact-store.ts). It knows nothing of what it holds;
 * the callers lay out their keys (src/checkpoints/checkpoint-location.ts for checkpoints).
 *
 * Keys are relative slash-separated paths (`a/b/file.bin`). Files are
 * streamed in and out, never held whole in memory, and every backend records each file's
 * SHA-256 when it is written and checks it when it is read.
 */
import type { Readable } from 'node:stream';

export type ArtifactStoreKind = 'postgres' | 'fs' | 's3';

/** A stored file: its key, size and content hash. */
export interface ArtifactInfo {
  key: string;
  bytes: number;
  /** Lower-case hex SHA-256 of the whole file. */
  sha256: string;
}

/** A file's bytes in order: a Readable, an async generator, or chunks already in memory. */
export type ArtifactBody = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface ArtifactStore {
  readonly kind: ArtifactStoreKind;
  /**
   * Stores `body` under `key`, replacing any file there. Readers see the old file or the new
   * one, never a partial one. Returns the size and SHA-256 computed while streaming.
   */
  put(key: string, body: ArtifactBody): Promise<ArtifactInfo>;
  /**
   * Streams the file. Throws {@link ArtifactNotFoundError} if there is none; the stream fails
   * with {@link ArtifactChecksumError} (after the last chunk) if the bytes read are not the
   * bytes written, so a consumer must not trust its copy before the stream has ended.
   */
  get(key: string): Promise<Readable>;
  /** Files whose key is `prefix` or lies under `prefix/`, sorted by key. */
  list(prefix: string): Promise<ArtifactInfo[]>;
  /** Deletes `prefix` and every file under `prefix/`; returns how many files went. */
  delete(prefix: string): Promise<number>;
  /** The stored size and SHA-256 of `key`, or undefined if there is no such file. */
  checksum(key: string): Promise<ArtifactInfo | undefined>;
  /** Releases connections the store opened itself (not a Prisma client it was given). */
  close(): Promise<void>;
}

export class ArtifactNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`artifact ${key} does not exist`);
    this.name = 'ArtifactNotFoundError';
  }
}

/** The bytes read back are not the bytes written (size or SHA-256 differ). */
export class ArtifactChecksumError extends Error {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`artifact ${key} is corrupt: ${detail}`);
    this.name = 'ArtifactChecksumError';
  }
}

const SEGMENT = /^[\w.-]+$/;

/**
 * Refuses keys that could escape a root directory or bucket prefix (`..`, absolute paths,
 * empty segments) and the `.sha256` / `.tmp-` names the fs and s3 backends use for themselves.
 */
export function checkKey(key: string): string {
  const segments = key.split('/');
  const bad = segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..');
  if (bad || key.endsWith('.sha256') || key.includes('.tmp-')) {
    throw new Error(`invalid artifact key ${JSON.stringify(key)}`);
  }
  return key;
}
