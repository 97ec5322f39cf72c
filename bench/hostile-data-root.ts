/**
 * A DATA_ROOT of hostile data sets for bench/hostile.ts, and a folder outside it that some of
 * them point into:
 *
 *   file.idx          a regular file, so `file.idx/x` is a path through a file
 *   loop              a symlink to itself
 *   notgz/            IDX files whose `.gz` images file is not gzip
 *   bomb/             IDX files whose `.gz` labels file (the one a submission reads) inflates to
 *                     `bombBytes` of zeros
 *   escape/train,val  image-folder splits that are symlinks to class folders outside the root
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import sharp from 'sharp';

function idxHeader(dims: number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return header;
}

/** A gzip file of an IDX header declaring `dims` and as many zero bytes. */
async function writeIdxBomb(file: string, dims: number[]): Promise<void> {
  const chunk = Buffer.alloc(1 << 20);
  let left = dims.reduce((a, b) => a * b, 1);
  const source = Readable.from(
    (function* () {
      yield idxHeader(dims);
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        yield n === chunk.length ? chunk : chunk.subarray(0, n);
      }
    })(),
  );
  await pipeline(source, createGzip({ level: 9 }), createWriteStream(file));
}

async function writeClassFolders(dir: string, classes: string[]): Promise<void> {
  const png = await sharp({
    create: { width: 8, height: 8, channels: 3, background: { r: 9, g: 99, b: 199 } },
  })
    .png()
    .toBuffer();
  for (const name of classes) {
    await mkdir(path.join(dir, name), { recursive: true });
    await writeFile(path.join(dir, name, 'a.png'), png);
  }
}

export interface HostileDataRoot {
  root: string;
  /** The folder outside the root that `escape/` links into. */
  outside: string;
  remove(): Promise<void>;
}

export async function createHostileDataRoot(bombBytes: number): Promise<HostileDataRoot> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'gq-hostile-root-'));
  const outside = await mkdtemp(path.join(os.tmpdir(), 'gq-hostile-outside-'));
  await writeFile(path.join(root, 'file.idx'), 'not a folder');
  await symlink('loop', path.join(root, 'loop'));

  const labels = (count: number) => Buffer.concat([idxHeader([count]), Buffer.alloc(count)]);
  await mkdir(path.join(root, 'notgz'));
  await writeFile(path.join(root, 'notgz', 'train-images-idx3-ubyte.gz'), 'plain text, not gzip');
  await writeFile(path.join(root, 'notgz', 'train-labels-idx1-ubyte.gz'), gzipSync(labels(10)));

  await mkdir(path.join(root, 'bomb'));
  await writeFile(
    path.join(root, 'bomb', 'train-images-idx3-ubyte.gz'),
    gzipSync(idxHeader([1, 28, 28])),
  );
  await writeIdxBomb(path.join(root, 'bomb', 'train-labels-idx1-ubyte.gz'), [bombBytes]);

  await writeClassFolders(path.join(outside, 'secret-train'), ['cat', 'dog']);
  await writeClassFolders(path.join(outside, 'secret-val'), ['cat', 'dog']);
  await mkdir(path.join(root, 'escape'));
  await symlink(path.join(outside, 'secret-train'), path.join(root, 'escape', 'train'));
  await symlink(path.join(outside, 'secret-val'), path.join(root, 'escape', 'val'));

  return {
    root,
    outside,
    async remove() {
      await rm(root, { recursive: true, force: true });
      await rm(outside, { recursive: true, force: true });
    },
  };
}
