/**
 * The worker's readers refuse a gzip bomb without inflating it: an IDX file is read as a
 * stream, its header checked against the data limits before anything is allocated, and its
 * payload refused at the first byte past what the header declares. Bombs are built here with
 * zlib from zeros (gzip members of 64 MiB of zeros, repeated).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readIdxStream } from '../../src/data/idx-file.js';
import { openImageSource } from '../../src/data/open-image-source.js';
import { DatasetError } from '../../src/data/raw-image.js';
import { DEFAULT_DATA_LIMITS, gzipBomb, idxBytes } from '../helpers/data-files.js';

const MiB = 1024 * 1024;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-bomb-'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** The peak memory this process has held so far (resident set), in bytes. */
function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * An MNIST-like folder whose images file is `header` gzipped, followed by `bombBytes` zeros in
 * further gzip members (the labels are plain and honest).
 */
async function writeBombFolder(name: string, dims: number[], bombBytes: number): Promise<void> {
  const dir = path.join(root, name);
  await mkdir(dir);
  await writeFile(
    path.join(dir, 'train-images-idx3-ubyte.gz'),
    Buffer.concat([gzipSync(idxBytes(dims, new Uint8Array(0))), gzipBomb(bombBytes)]),
  );
  const count = dims[0] ?? 0;
  await writeFile(
    path.join(dir, 'train-labels-idx1-ubyte'),
    idxBytes(
      [count],
      new Uint8Array(count).map((_, i) => i % 10),
    ),
  );
}

function open(name: string) {
  return openImageSource({ format: 'idx', path: name }, 'train', {
    dataRoot: root,
    inputSize: 28,
    channels: 1,
    limits: DEFAULT_DATA_LIMITS,
  });
}

describe('gzip bombs in the worker', () => {
  it('a 1 GiB bomb behind an honest-looking 4.7 MB header is refused without inflating it', async () => {
    await writeBombFolder('behind-header', [6000, 28, 28], 1024 * MiB);
    const before = peakRss();
    const refused = await open('behind-header').catch((error: unknown) => error);
    const grown = peakRss() - before;
    expect(refused).toBeInstanceOf(DatasetError);
    expect((refused as Error).message).toMatch(
      /dataset\.path 'behind-header': train-images-idx3-ubyte\.gz holds more than the 4704000 bytes its header declares/,
    );
    // Inflating it all would take a gigabyte; the reader stops a chunk past the declared size.
    expect(grown, `peak memory grew by ${Math.round(grown / MiB)} MiB`).toBeLessThan(256 * MiB);
  });

  it('a header that declares more than DATA_MAX_BYTES is refused before anything is allocated', async () => {
    // 100,000 images of 200x200: 4 GB of pixels declared, in a file of 64 kB.
    await writeBombFolder('huge-header', [100_000, 200, 200], 64 * MiB);
    const before = peakRss();
    const refused = await open('huge-header').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DatasetError);
    expect((refused as Error).message).toMatch(
      /dataset\.path 'huge-header': train-images-idx3-ubyte\.gz declares 4000000000 bytes of pixels; DATA_MAX_BYTES is 1073741824/,
    );
    expect(peakRss() - before).toBeLessThan(128 * MiB);
  });

  it('an endless gzip stream is read no further than its header allows', async () => {
    const header = gzipSync(idxBytes([1000, 28, 28], new Uint8Array(0)));
    const zeros = gzipBomb(64 * MiB); // one member: 64 MiB of zeros
    let membersPulled = 0;
    const endless = Readable.from(
      (function* () {
        yield header;
        for (;;) {
          membersPulled++;
          yield zeros;
        }
      })(),
    );
    const inflated = endless.pipe(createGunzip());
    let kept = 0;
    const refused = await readIdxStream(inflated, 'endless.gz', {
      check: () => undefined,
      visit: (chunk) => (kept += chunk.length),
    }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DatasetError);
    expect((refused as Error).message).toMatch(/holds more than the 784000 bytes/);
    expect(kept).toBeLessThanOrEqual(784_000);
    // Each member inflates to 64 MiB: the first one already holds too much.
    expect(membersPulled).toBeLessThanOrEqual(3);
    endless.destroy();
  });
});
