import { createHash } from 'node:crypto';
import {
  cp,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { syntheticBatch } from '../../src/data/synthetic.js';
import {
  CHECKPOINT_FILES,
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
  type TensorSpec,
  type TrainingState,
} from '../../src/checkpoints/checkpoint.js';
import { createGoogLeNet } from '../../src/model/googlenet.js';
import type { Norm } from '../../src/spec/googlenet-config.js';
import type { OptimizerConfigInput } from '../../src/model/optimizer.js';
import { createTrainer, type Trainer } from '../../src/model/train-step.js';
import { useBackend } from '../helpers/backends.js';
import { variableOf } from '../../src/model/layer-variables.js';

// Pass-through, so one test can make the final rename fail and watch the cleanup.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, rename: vi.fn(actual.rename) };
});

const MODEL = { numClasses: 4, inputSize: 32, width: 0.125, seed: 1 } as const;
const BATCH = 4;
const DATA = { numClasses: 4, size: 64, seed: 3, inputSize: 32, channels: 3 } as const;
const RUN_SEED = 11;
const SGD: OptimizerConfigInput = { type: 'sgd', learningRate: 0.05, momentum: 0.9 };
const ADAM: OptimizerConfigInput = { type: 'adam', learningRate: 0.001 };

let root: string;

function makeTrainer(model: tfl.LayersModel, optimizer: OptimizerConfigInput): Trainer {
  return createTrainer({ model, optimizer, stepsPerEpoch: 3, totalSteps: 6, seed: RUN_SEED });
}

/** Trains until `trainer.step === until`; batch i is always images [4i, 4i + 4). */
function trainUntil(trainer: Trainer, until: number): void {
  while (trainer.step < until) {
    const batch = syntheticBatch(DATA, trainer.step * BATCH, BATCH);
    const images = tf.tensor4d(batch.images, [
      BATCH,
      DATA.inputSize,
      DATA.inputSize,
      DATA.channels,
    ]);
    const labels = tf.tensor1d(batch.labels, 'int32');
    trainer.trainStep(images, labels);
    tf.dispose([images, labels]);
  }
}

/** A copy of every weight's float32 bytes, by stable name. */
function weightBytes(model: tfl.LayersModel): Map<string, Buffer> {
  return new Map(
    model.weights.map((w) => {
      const values = variableOf(w).dataSync() as Float32Array;
      return [
        w.originalName,
        Buffer.from(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
      ];
    }),
  );
}

/** Names whose bytes differ (or that one side lacks). */
function differing(a: Map<string, Buffer>, b: Map<string, Buffer>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((name) => {
    const x = a.get(name);
    const y = b.get(name);
    return !x || !y || !x.equals(y);
  });
}

async function loadError(dir: string, model: tfl.LayersModel): Promise<Error> {
  const result = await loadCheckpoint(dir, model).then(
    (loaded) => {
      tf.dispose([...loaded.optimizer.slots.values()]);
      return undefined;
    },
    (error: unknown) => error,
  );
  if (!(result instanceof Error)) throw new Error(`expected loading ${dir} to fail, but it loaded`);
  return result;
}

async function tempEntries(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.includes('.tmp-'));
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'googlenet-checkpoint-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  await useBackend('wasm');
});

describe('resuming from a checkpoint', () => {
  const K = 3;
  const N = 6;
  interface ResumeCase {
    title: string;
    backend: 'wasm' | 'cpu';
    optimizer: OptimizerConfigInput;
    norm: Norm;
    slotsPerWeight: number;
    /** Save after step k, compare after step n. */
    k: number;
    n: number;
  }
  const cases: ResumeCase[] = [
    {
      title: 'SGD momentum 0.9 on wasm',
      backend: 'wasm',
      optimizer: SGD,
      norm: 'none',
      slotsPerWeight: 1,
      k: K,
      n: N,
    },
    {
      title: 'Adam with batch norm (non-trainable moving statistics) on wasm',
      backend: 'wasm',
      optimizer: ADAM,
      norm: 'batchnorm',
      slotsPerWeight: 2,
      k: K,
      n: N,
    },
    // tfjs-backend-cpu's convolution gradients are ~6x slower than our wasm kernels: fewer steps.
    {
      title: 'SGD momentum 0.9 on cpu',
      backend: 'cpu',
      optimizer: SGD,
      norm: 'none',
      slotsPerWeight: 1,
      k: 2,
      n: 3,
    },
  ];

  for (const c of cases) {
    it(`continues bit for bit like the uninterrupted run: ${c.title}`, async () => {
      const { k, n } = c;
      await useBackend(c.backend);
      const config = { ...MODEL, norm: c.norm };
      const modelA = createGoogLeNet(config);
      const trainerA = makeTrainer(modelA, c.optimizer);
      trainUntil(trainerA, k);
      const dir = path.join(root, `resume-${c.backend}-${c.norm}-${c.optimizer.type}`);
      const state: TrainingState = {
        step: k,
        epoch: 1,
        seed: RUN_SEED,
        data: { cursor: k * BATCH, order: { kind: 'sequential', start: 0 } },
        metrics: { loss: 1.25 },
      };
      await saveCheckpoint(dir, { model: modelA, optimizer: trainerA.optimizer.getState(), state });
      const atK = weightBytes(modelA);
      trainUntil(trainerA, n);
      const uninterrupted = weightBytes(modelA);

      // A second model in this process: its variables get new unique names (`..._1`).
      const modelB = createGoogLeNet(config);
      expect(modelB.weights.map((w) => w.name)).not.toEqual(modelA.weights.map((w) => w.name));
      expect(differing(weightBytes(modelB), atK).length).toBeGreaterThan(0);
      const trainerB = makeTrainer(modelB, c.optimizer);
      const loaded = await loadCheckpoint(dir, modelB);
      expect(loaded.state).toEqual(state);
      expect(loaded.optimizer.iterations).toBe(k);
      expect(loaded.optimizer.slots.size).toBe(c.slotsPerWeight * modelB.trainableWeights.length);
      expect(differing(weightBytes(modelB), atK)).toEqual([]);
      trainerB.restore(loaded.state.step, loaded.optimizer);
      tf.dispose([...loaded.optimizer.slots.values()]);
      trainUntil(trainerB, n);
      const resumed = weightBytes(modelB);

      expect(resumed.size).toBe(modelA.weights.length);
      expect(uninterrupted.size).toBe(modelA.weights.length);
      expect(differing(resumed, uninterrupted)).toEqual([]);
      // Steps k..n-1 really moved the weights, so equality above is not trivially true.
      const moved = differing(atK, uninterrupted);
      expect(moved.length).toBeGreaterThan(modelA.trainableWeights.length / 2);
      if (c.norm === 'batchnorm') {
        expect(modelA.nonTrainableWeights.length).toBeGreaterThan(0);
        expect(moved).toContain('conv1/7x7_s2/bn/moving_mean');
      }

      trainerA.dispose();
      trainerB.dispose();
      modelA.dispose();
      modelB.dispose();
    });
  }

  it('without the optimizer state the resumed run diverges (the comparison is sensitive)', async () => {
    const modelA = createGoogLeNet(MODEL);
    const trainerA = makeTrainer(modelA, SGD);
    trainUntil(trainerA, K);
    const dir = path.join(root, 'resume-without-slots');
    await saveCheckpoint(dir, {
      model: modelA,
      optimizer: trainerA.optimizer.getState(),
      state: { step: K, epoch: 1 },
    });
    trainUntil(trainerA, N);

    const modelB = createGoogLeNet(MODEL);
    const trainerB = makeTrainer(modelB, SGD);
    const loaded = await loadCheckpoint(dir, modelB);
    tf.dispose([...loaded.optimizer.slots.values()]);
    trainerB.restore(loaded.state.step, {
      iterations: loaded.optimizer.iterations,
      slots: new Map(),
    });
    trainUntil(trainerB, N);
    expect(differing(weightBytes(modelB), weightBytes(modelA)).length).toBeGreaterThan(0);

    trainerA.dispose();
    trainerB.dispose();
    modelA.dispose();
    modelB.dispose();
  });
});

describe('checkpoint files', () => {
  let model: tfl.LayersModel;
  let trainer: Trainer;
  let target: tfl.LayersModel;
  let base: string;

  beforeAll(async () => {
    await useBackend('wasm');
    model = createGoogLeNet(MODEL);
    trainer = makeTrainer(model, SGD);
    trainUntil(trainer, 1);
    target = createGoogLeNet(MODEL);
    base = path.join(root, 'base');
    await saveCheckpoint(base, {
      model,
      optimizer: trainer.optimizer.getState(),
      state: { step: 1, epoch: 0 },
    });
  });
  afterAll(() => {
    trainer.dispose();
    model.dispose();
    target.dispose();
  });

  async function copyOfBase(name: string): Promise<string> {
    const dir = path.join(root, name);
    await cp(base, dir, { recursive: true });
    return dir;
  }

  describe('layout', () => {
    it('keys weights and slots by stable layer names in tfjs weights-manifest form', async () => {
      const weights = JSON.parse(
        await readFile(path.join(base, CHECKPOINT_FILES.weightSpecs), 'utf8'),
      ) as {
        weightsManifest: Array<{ paths: string[]; weights: TensorSpec[] }>;
      };
      const optimizer = JSON.parse(
        await readFile(path.join(base, CHECKPOINT_FILES.optimizerSpecs), 'utf8'),
      ) as {
        iterations: number;
        weightsManifest: Array<{ paths: string[]; weights: TensorSpec[] }>;
      };
      const [group] = weights.weightsManifest;
      expect(group?.paths).toEqual([CHECKPOINT_FILES.weights]);
      expect(group?.weights.map((w) => w.name)).toEqual(model.weights.map((w) => w.originalName));
      expect(group?.weights[0]).toMatchObject({
        name: 'conv1/7x7_s2/kernel',
        dtype: 'float32',
        offset: 0,
      });
      expect(optimizer.iterations).toBe(1);
      expect(optimizer.weightsManifest[0]?.weights.map((w) => w.name)).toContain(
        'conv1/7x7_s2/kernel/momentum',
      );

      // tfjs itself can decode the files, so an export needs no conversion.
      const bin = await readFile(path.join(base, CHECKPOINT_FILES.weights));
      const decoded = tf.io.decodeWeights(new Uint8Array(bin).buffer, group?.weights ?? []);
      const kernel = decoded['conv1/7x7_s2/kernel'];
      expect(kernel?.dataSync()).toEqual(
        variableOf(model.weights[0] as tfl.LayerVariable).dataSync(),
      );
      tf.dispose(Object.values(decoded));
    });

    it('lists every file in manifest.json with its size and SHA-256', async () => {
      const manifest = JSON.parse(
        await readFile(path.join(base, CHECKPOINT_FILES.manifest), 'utf8'),
      ) as {
        format: string;
        version: number;
        createdAt: string;
        files: Array<{ path: string; bytes: number; sha256: string }>;
      };
      expect(manifest.version).toBe(1);
      expect(Number.isNaN(Date.parse(manifest.createdAt))).toBe(false);
      const onDisk = (await readdir(base))
        .filter((name) => name !== CHECKPOINT_FILES.manifest)
        .sort();
      expect(manifest.files.map((f) => f.path).sort()).toEqual(onDisk);
      expect(onDisk).toHaveLength(5);
      for (const file of manifest.files) {
        const data = await readFile(path.join(base, file.path));
        expect(file.bytes).toBe(data.byteLength);
        expect(file.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      }
    });

    it('creates missing parent directories', async () => {
      const dir = path.join(root, 'nested', 'run-1', 'step-1');
      await saveCheckpoint(dir, {
        model,
        optimizer: trainer.optimizer.getState(),
        state: { step: 1, epoch: 0 },
      });
      expect((await stat(path.join(dir, CHECKPOINT_FILES.manifest))).isFile()).toBe(true);
    });
  });

  describe('corruption is refused', () => {
    it('loads the unmodified checkpoint (control for the refusals below)', async () => {
      const dir = await copyOfBase('pristine');
      const loaded = await loadCheckpoint(dir, target);
      tf.dispose([...loaded.optimizer.slots.values()]);
      expect(differing(weightBytes(target), weightBytes(model))).toEqual([]);
    });

    it('a flipped byte in weights.bin is refused, naming the file, and leaves the model untouched', async () => {
      const dir = await copyOfBase('flipped-byte');
      const file = path.join(dir, CHECKPOINT_FILES.weights);
      const bytes = await readFile(file);
      const middle = bytes.byteLength >> 1;
      bytes.writeUInt8(bytes.readUInt8(middle) ^ 0x01, middle);
      await writeFile(file, bytes);
      const fresh = createGoogLeNet(MODEL);
      const before = weightBytes(fresh);
      const error = await loadError(dir, fresh);
      expect(error).toBeInstanceOf(CheckpointError);
      expect(error.message).toMatch(/weights\.bin does not match its SHA-256/);
      expect(differing(weightBytes(fresh), before)).toEqual([]);
      fresh.dispose();
    });

    it('a missing manifest.json is refused as incomplete', async () => {
      const dir = await copyOfBase('no-manifest');
      await rm(path.join(dir, CHECKPOINT_FILES.manifest));
      const error = await loadError(dir, target);
      expect(error).toBeInstanceOf(CheckpointError);
      expect(error.message).toMatch(/incomplete or torn: manifest\.json is missing/);
    });

    it('a truncated file is refused, naming the file', async () => {
      const dir = await copyOfBase('truncated');
      const file = path.join(dir, CHECKPOINT_FILES.optimizer);
      await truncate(file, (await stat(file)).size - 4);
      const error = await loadError(dir, target);
      expect(error).toBeInstanceOf(CheckpointError);
      expect(error.message).toMatch(/optimizer\.bin has \d+ bytes, manifest\.json says \d+/);
    });

    it('a listed file that is missing is refused, naming the file', async () => {
      const dir = await copyOfBase('missing-state');
      await rm(path.join(dir, CHECKPOINT_FILES.state));
      const error = await loadError(dir, target);
      expect(error).toBeInstanceOf(CheckpointError);
      expect(error.message).toMatch(/state\.json is listed in manifest\.json but missing/);
    });

    it('a missing checkpoint directory is refused', async () => {
      const error = await loadError(path.join(root, 'never-written'), target);
      expect(error).toBeInstanceOf(CheckpointError);
    });
  });

  describe('atomicity', () => {
    it('leaves no temporary directory after a successful save', async () => {
      expect(await tempEntries(root)).toEqual([]);
      expect(await tempEntries(path.join(root, 'nested', 'run-1'))).toEqual([]);
    });

    it('refuses to save into an existing directory and leaves that checkpoint loadable', async () => {
      const manifestBefore = await readFile(path.join(base, CHECKPOINT_FILES.manifest));
      const error = await saveCheckpoint(base, {
        model,
        optimizer: trainer.optimizer.getState(),
        state: { step: 2, epoch: 0 },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as Error).message).toMatch(/already exists/);
      expect(await readFile(path.join(base, CHECKPOINT_FILES.manifest))).toEqual(manifestBefore);
      const loaded = await loadCheckpoint(base, target);
      tf.dispose([...loaded.optimizer.slots.values()]);
      expect(loaded.state.step).toBe(1);
      expect(await tempEntries(root)).toEqual([]);
    });

    it('a save that fails at the final rename leaves neither the checkpoint nor its temporary directory', async () => {
      const dir = path.join(root, 'failed-rename');
      vi.mocked(rename).mockRejectedValueOnce(
        Object.assign(new Error('EIO: simulated I/O error'), { code: 'EIO' }),
      );
      const error = await saveCheckpoint(dir, {
        model,
        optimizer: trainer.optimizer.getState(),
        state: { step: 1, epoch: 0 },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(CheckpointError); // an I/O fault may be retried
      expect((error as Error).message).toMatch(/EIO/);
      // The rename really was attempted from a fully written temporary directory...
      const tmp = vi.mocked(rename).mock.calls.at(-1)?.[0] as string;
      expect(path.basename(tmp)).toMatch(/^failed-rename\.tmp-\d+-[0-9a-f]+$/);
      // ...which is now gone, and no checkpoint appeared.
      expect(await tempEntries(root)).toEqual([]);
      await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('refuses training state that JSON cannot carry, before writing anything', async () => {
      const dir = path.join(root, 'nan-metric');
      const error = await saveCheckpoint(dir, {
        model,
        optimizer: trainer.optimizer.getState(),
        state: { step: 1, epoch: 0, metrics: { loss: Number.NaN } },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await tempEntries(root)).toEqual([]);
    });
  });

  it('a checkpoint for 4 classes is refused by a 5-class model, naming the classifier weight', async () => {
    const fiveClasses = createGoogLeNet({ ...MODEL, numClasses: 5 });
    const before = weightBytes(fiveClasses);
    const error = await loadError(base, fiveClasses);
    expect(error).toBeInstanceOf(CheckpointError);
    expect(error.message).toMatch(
      /loss3\/classifier\/kernel has shape \[\d+,4\], the model expects \[\d+,5\]/,
    );
    expect(differing(weightBytes(fiveClasses), before)).toEqual([]);
    fiveClasses.dispose();
  });

  it('a save, load and restore cycle leaves tf.memory().numTensors unchanged', async () => {
    const before = tf.memory().numTensors;
    const dir = path.join(root, 'leak');
    await saveCheckpoint(dir, {
      model,
      optimizer: trainer.optimizer.getState(),
      state: { step: 1, epoch: 0 },
    });
    const loaded = await loadCheckpoint(dir, target);
    expect(loaded.optimizer.slots.size).toBeGreaterThan(0);
    const restored = makeTrainer(target, SGD);
    restored.restore(loaded.state.step, loaded.optimizer);
    tf.dispose([...loaded.optimizer.slots.values()]);
    restored.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
