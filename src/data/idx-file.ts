/**
 * Reading one IDX file as a stream, never whole: the header first (two zero bytes, a type byte —
 * 0x08, unsigned bytes — the number of dimensions, then each dimension as a big-endian uint32),
 * which a caller checks against its limits before a byte of the payload is kept; then the
 * payload, chunk by chunk, refused the moment it holds more bytes than the header declared. A
 * `.gz` file is inflated by zlib's stream (off the event loop, a chunk at a time), so a gzip
 * bomb costs what its header admits to and no more.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DatasetError } from './raw-image.js';

export interface IdxHeader {
  dims: number[];
  /** Bytes of the header itself (4 + 4 per dimension). */
  headerBytes: number;
  /** Bytes of payload the dimensions declare. */
  dataBytes: number;
}

/** Dimensions an IDX file may declare (the format's byte allows 255; data sets use 1 to 3). */
const MAX_RANK = 4;

/** Inflated bytes per chunk of a `.gz` file. */
const CHUNK_BYTES = 64 * 1024;

/** The file's bytes as stored, or inflated when its name ends in `.gz`. */
export function idxByteStream(file: string): Readable {
  const raw = createReadStream(file, { highWaterMark: CHUNK_BYTES });
  if (!file.endsWith('.gz')) return raw;
  const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
  // Errors of either end surface on `gunzip`, which the reader iterates.
  pipeline(raw, gunzip, () => undefined);
  return gunzip;
}

/** The header at the start of `bytes`, or undefined while more bytes are needed. */
function parseHeader(bytes: Uint8Array, name: string): IdxHeader | undefined {
  if (bytes.length < 4) return undefined;
  if (bytes[0] !== 0 || bytes[1] !== 0) throw new DatasetError(`${name} is not an IDX file`);
  if (bytes[2] !== 0x08) throw new DatasetError(`${name}: only unsigned-byte IDX files are read`);
  const rank = bytes[3] ?? 0;
  if (rank < 1 || rank > MAX_RANK)
    throw new DatasetError(`${name}: ${rank} dimensions; IDX data sets have 1 to ${MAX_RANK}`);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, headerBytes, dataBytes: dims.reduce((a, b) => a * b, 1) };
}

/** A zlib or read error as a data set error; anything else as it is. */
function asDatasetError(error: unknown, name: string): unknown {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('Z_')) return new DatasetError(`${name} is not valid gzip data`);
  return error;
}

export interface IdxReadOptions {
  /** Throws to refuse the file once its header is known (before any payload is kept). */
  check(header: IdxHeader): void;
  /** Takes the payload, in order, `offset` bytes into it; absent: only the header is read. */
  visit?(chunk: Uint8Array, offset: number): void;
}

/**
 * Reads the IDX stream `bytes` (as {@link idxByteStream} gives it) named `name` in messages:
 * its header, checked by `options.check`, then its payload into `options.visit`. Refuses a
 * payload longer or shorter than the header declares, stopping at the first byte too many.
 * The stream is destroyed when this returns or throws, so nothing more is read or inflated.
 */
export async function readIdxStream(
  bytes: Readable,
  name: string,
  options: IdxReadOptions,
): Promise<IdxHeader> {
  let head = new Uint8Array(0);
  let header: IdxHeader | undefined;
  let offset = 0;
  try {
    for await (const chunk of bytes as AsyncIterable<Uint8Array>) {
      let payload = chunk;
      if (!header) {
        const joined = new Uint8Array(head.length + chunk.length);
        joined.set(head);
        joined.set(chunk, head.length);
        header = parseHeader(joined, name);
        if (!header) {
          head = joined;
          continue;
        }
        options.check(header);
        if (!options.visit) return header;
        payload = joined.subarray(header.headerBytes);
      }
      if (offset + payload.length > header.dataBytes)
        throw new DatasetError(
          `${name} holds more than the ${header.dataBytes} bytes its header declares`,
        );
      if (payload.length > 0) options.visit?.(payload, offset);
      offset += payload.length;
    }
  } catch (error) {
    throw asDatasetError(error, name);
  } finally {
    bytes.destroy();
  }
  if (!header) throw new DatasetError(`${name}: header cut short`);
  if (offset !== header.dataBytes)
    throw new DatasetError(`${name}: ${offset} data bytes, header says ${header.dataBytes}`);
  return header;
}

/** Reads `file`'s IDX header only (for a `.gz`, inflating just its first chunk). */
export function readIdxHeader(file: string): Promise<IdxHeader> {
  return readIdxStream(idxByteStream(file), path.basename(file), { check: () => undefined });
}

/**
 * Reads `file` whole into memory, after `check` accepted its header: the payload is allocated
 * at the declared size, and filled as it is inflated.
 */
export async function readIdxFile(
  file: string,
  check: (header: IdxHeader) => void,
): Promise<{ dims: number[]; data: Uint8Array }> {
  let data = new Uint8Array(0);
  const header = await readIdxStream(idxByteStream(file), path.basename(file), {
    check(found) {
      check(found);
      data = new Uint8Array(found.dataBytes);
    },
    visit: (chunk, offset) => data.set(chunk, offset),
  });
  return { dims: header.dims, data };
}
