/**
 * Hashing on the way through: the write side measures what it stores, the read side checks
 * what it hands out against what was stored.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ArtifactChecksumError } from './artifact-store.js';

/** Passes the chunks through, then fails if their size or SHA-256 differ from `expected`. */
export function verifiedStream(
  key: string,
  source: AsyncIterable<Uint8Array>,
  expected: { bytes: number; sha256: string },
): Readable {
  async function* check(): AsyncGenerator<Uint8Array> {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of source) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      yield chunk;
    }
    if (bytes !== expected.bytes) {
      throw new ArtifactChecksumError(key, `read ${bytes} bytes, stored size is ${expected.bytes}`);
    }
    if (hash.digest('hex') !== expected.sha256) {
      throw new ArtifactChecksumError(key, 'its SHA-256 does not match the stored one');
    }
  }
  return Readable.from(check(), { objectMode: false });
}

/** Counts and hashes chunks as they pass; read `bytes` and `sha256()` once the source ends. */
export function measure(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): {
  chunks: AsyncGenerator<Uint8Array>;
  bytes(): number;
  sha256(): string;
} {
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | undefined;
  async function* pass(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      yield chunk;
    }
  }
  return {
    chunks: pass(),
    bytes: () => bytes,
    sha256: () => (digest ??= hash.digest('hex')),
  };
}

/**
 * Regroups a byte stream into chunks of exactly `size` bytes (the last may be shorter), each a
 * fresh buffer: the postgres store's rows are then all the same size whatever the source's.
 */
export async function* rechunk(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  let current = new Uint8Array(size);
  let filled = 0;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(size - filled, chunk.byteLength - offset);
      current.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === size) {
        yield current;
        current = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield current.slice(0, filled);
}
