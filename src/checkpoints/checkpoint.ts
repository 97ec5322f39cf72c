/**
 * Training checkpoints: model weights, optimizer slots and the loop's position, saved to one
 * directory that appears atomically and is verified (size + SHA-256 per file) when loaded.
 *
 * Layout of a checkpoint directory:
 * - `weights.bin` / `weights.json`: every model weight (trainable or not, e.g. batch-norm moving
 *   statistics) as little-endian float32, and a tfjs weights manifest (`{ weightsManifest }`, the
 *   same field model.json has) whose entries also record each tensor's byte `offset` and `length`.
 * - `optimizer.bin` / `optimizer.json`: the optimizer's slots in the same form, plus `iterations`.
 * - `state.json`: {@link TrainingState}.
 * - `manifest.json`: format, version, createdAt and every other file's size and SHA-256. Written
 *   last; a directory without it is a torn checkpoint.
 *
 * Names are stable layer-scoped names (`conv1/7x7_s2/kernel`, slots `conv1/7x7_s2/kernel/m`),
 * never tf.Variable names: tfjs-layers makes those unique per process (`..._1` for a second
 * model), so they would not match a freshly built model.
 */
import os from 'node:os';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import {
  CheckpointError,
  publishDirectory,
  readVerifiedFile,
  writeFileSynced,
} from './checkpoint-files.js';
import {
  CHECKPOINT_FILES,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  fileNameSchema,
  manifestSchema,
  type CheckpointFile,
  type CheckpointManifest,
  type SavedCheckpoint,
} from './checkpoint-manifest.js';
import type { OptimizerState } from '../model/optimizer.js';
import { variableOf } from '../model/layer-variables.js';

export { CheckpointError } from './checkpoint-files.js';
export {
  CHECKPOINT_FILES,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  parseCheckpointManifest,
  type CheckpointFile,
  type CheckpointManifest,
} from './checkpoint-manifest.js';

/** Optimizer slot kinds (see optimizer.ts): SGD's `momentum`, Adam's `m` and `v`. */
const SLOT_KINDS = ['momentum', 'm', 'v'] as const;

/** Where the training loop stands; enough, with weights and optimizer state, to resume exactly. */
export interface TrainingState {
  /** Index of the next step to take (= steps taken). */
  step: number;
  epoch: number;
  /** The run's seed (dropout masks, data order). */
  seed?: number;
  /** Data-order / RNG cursor: opaque to this module, but must be plain JSON. */
  data?: Record<string, unknown>;
  /** Latest metrics (loss, accuracy, ...); finite numbers only, as JSON has no NaN. */
  metrics?: Record<string, number>;
}

/** A tfjs weights-manifest entry plus where the tensor's bytes lie in the binary file. */
export interface TensorSpec extends tf.io.WeightsManifestEntry {
  dtype: 'float32';
  /** Byte offset in the .bin file. */
  offset: number;
  /** Byte length (4 × element count). */
  length: number;
}

export interface SaveCheckpointInput {
  model: tfl.LayersModel;
  /** `trainer.optimizer.getState()`; slots keyed by the model's live variable names. */
  optimizer: OptimizerState;
  state: TrainingState;
}

export interface LoadedCheckpoint {
  /**
   * Slots keyed by *this* model's variable names, ready for `trainer.restore(state.step,
   * optimizer)`. The caller owns the tensors: restore copies them, so dispose them afterwards
   * (`tf.dispose([...optimizer.slots.values()])`).
   */
  optimizer: OptimizerState;
  state: TrainingState;
  manifest: CheckpointManifest;
}

const tensorSpecSchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().min(0)),
  dtype: z.literal('float32'),
  group: z.enum(['model', 'optimizer']).optional(),
  offset: z.number().int().min(0),
  length: z.number().int().min(0),
});

const weightsManifestSchema = z.tuple([
  z.object({ paths: z.tuple([fileNameSchema]), weights: z.array(tensorSpecSchema) }),
]);

const weightsFileSchema = z.object({ weightsManifest: weightsManifestSchema });

const optimizerFileSchema = z.object({
  iterations: z.number().int().min(0),
  weightsManifest: weightsManifestSchema,
});

const trainingStateSchema: z.ZodType<TrainingState> = z
  .object({
    step: z.number().int().min(0),
    epoch: z.number().min(0),
    seed: z.number().int().optional(),
    data: z.record(z.string(), z.unknown()).optional(),
    metrics: z.record(z.string(), z.number()).optional(),
  })
  .strict();

/** A named tensor's values, copied out of the backend. */
interface NamedValues {
  name: string;
  shape: number[];
  values: Float32Array;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

function listSome(items: string[], limit = 8): string {
  return items.length <= limit
    ? items.join(', ')
    : `${items.slice(0, limit).join(', ')} and ${items.length - limit} more`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The model's weights by stable name, refusing what this format cannot hold. */
function modelWeights(model: tfl.LayersModel): Map<string, tfl.LayerVariable> {
  const byName = new Map<string, tfl.LayerVariable>();
  for (const weight of model.weights) {
    if (byName.has(weight.originalName)) {
      throw new CheckpointError(
        `model has two weights named ${weight.originalName}; checkpoints need unique names`,
      );
    }
    if (weight.dtype !== 'float32') {
      throw new CheckpointError(
        `weight ${weight.originalName} is ${weight.dtype}; checkpoints hold float32 only`,
      );
    }
    byName.set(weight.originalName, weight);
  }
  return byName;
}

/** Splits `<weight>/<kind>`; weight names contain slashes, the kind does not. */
function splitSlotKey(key: string): { weight: string; kind: string } {
  const cut = key.lastIndexOf('/');
  return { weight: key.slice(0, cut), kind: key.slice(cut + 1) };
}

/**
 * Reads every weight and slot before the first await, so the checkpoint is one consistent step
 * even if training goes on while the files are written. dataSync gives a copy (wasm, node) or a
 * buffer tfjs never writes again (cpu: assign swaps buffers, it does not overwrite them).
 */
function snapshot(
  model: tfl.LayersModel,
  optimizer: OptimizerState,
): { weights: NamedValues[]; slots: NamedValues[] } {
  const weights = [...modelWeights(model)].map(([name, weight]) => {
    const variable = variableOf(weight);
    return { name, shape: variable.shape, values: variable.dataSync() as Float32Array };
  });
  const stableName = new Map(model.weights.map((w) => [variableOf(w).name, w.originalName]));
  const slots = [...optimizer.slots].map(([key, tensor]) => {
    const { weight, kind } = splitSlotKey(key);
    const name = stableName.get(weight);
    if (name === undefined) {
      throw new CheckpointError(`optimizer slot ${key} belongs to no weight of this model`);
    }
    if (tensor.dtype !== 'float32') {
      throw new CheckpointError(`optimizer slot ${key} is ${tensor.dtype}, not float32`);
    }
    return {
      name: `${name}/${kind}`,
      shape: tensor.shape,
      values: tensor.dataSync() as Float32Array,
    };
  });
  return { weights, slots };
}

async function writeJson(dir: string, name: string, value: unknown): Promise<CheckpointFile> {
  const bytes = new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
  return { path: name, ...(await writeFileSynced(path.join(dir, name), [bytes])) };
}

/** Writes the tensors back to back into one .bin and returns their specs. */
async function writeTensors(
  dir: string,
  name: string,
  tensors: NamedValues[],
  group: 'model' | 'optimizer',
): Promise<{ file: CheckpointFile; specs: TensorSpec[] }> {
  const specs: TensorSpec[] = [];
  let offset = 0;
  for (const t of tensors) {
    specs.push({
      name: t.name,
      shape: t.shape,
      dtype: 'float32',
      group,
      offset,
      length: t.values.byteLength,
    });
    offset += t.values.byteLength;
  }
  const chunks = tensors.map(
    (t) => new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength),
  );
  return { file: { path: name, ...(await writeFileSynced(path.join(dir, name), chunks)) }, specs };
}

/** Refuses state that would not survive a JSON round trip unchanged. */
function checkState(state: TrainingState): TrainingState {
  const parsed = trainingStateSchema.safeParse(state);
  if (!parsed.success)
    throw new CheckpointError(`invalid training state: ${describeIssues(parsed.error)}`);
  let roundTrip: unknown;
  try {
    roundTrip = JSON.parse(JSON.stringify(parsed.data));
  } catch (error) {
    throw new CheckpointError('training state is not JSON-serialisable', { cause: error });
  }
  if (!isDeepStrictEqual(roundTrip, parsed.data)) {
    throw new CheckpointError(
      'training state.data must be plain JSON (no undefined, Date, NaN, class instances)',
    );
  }
  return parsed.data;
}

/**
 * Saves a checkpoint into `dir`, which must not exist (use one directory per step). The files are
 * written and fsynced in a temporary sibling directory that is then renamed to `dir`, so a crash
 * leaves either no checkpoint or a complete one. Throws {@link CheckpointError} if `dir` exists or
 * the input cannot be saved; I/O errors pass through. Missing parent directories are created.
 * Returns what was saved with its digest (the manifest's size and SHA-256), so that nothing has
 * to read the checkpoint back to describe it.
 */
export async function saveCheckpoint(
  dir: string,
  input: SaveCheckpointInput,
): Promise<SavedCheckpoint & { manifest: CheckpointManifest }> {
  if (os.endianness() !== 'LE')
    throw new Error('checkpoints are little-endian; big-endian hosts are not supported');
  const state = checkState(input.state);
  const { iterations } = input.optimizer;
  if (!Number.isInteger(iterations) || iterations < 0) {
    throw new CheckpointError(
      `optimizer iterations must be a non-negative integer, got ${iterations}`,
    );
  }
  const { weights, slots } = snapshot(input.model, input.optimizer);
  const F = CHECKPOINT_FILES;
  return publishDirectory(dir, async (tmp) => {
    const files: CheckpointFile[] = [];
    const model = await writeTensors(tmp, F.weights, weights, 'model');
    files.push(model.file);
    files.push(
      await writeJson(tmp, F.weightSpecs, {
        weightsManifest: [{ paths: [F.weights], weights: model.specs }],
      }),
    );
    const optimizer = await writeTensors(tmp, F.optimizer, slots, 'optimizer');
    files.push(optimizer.file);
    files.push(
      await writeJson(tmp, F.optimizerSpecs, {
        iterations,
        weightsManifest: [{ paths: [F.optimizer], weights: optimizer.specs }],
      }),
    );
    files.push(await writeJson(tmp, F.state, state));
    const manifest: CheckpointManifest = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      createdAt: new Date().toISOString(),
      files,
    };
    const written = await writeJson(tmp, F.manifest, manifest);
    const bytes = files.reduce((sum, f) => sum + f.bytes, written.bytes);
    return { location: dir, files, bytes, sha256: written.sha256, manifest };
  });
}

async function readManifest(dir: string): Promise<CheckpointManifest> {
  let text: string;
  try {
    text = await readFile(path.join(dir, CHECKPOINT_FILES.manifest), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CheckpointError(
        `checkpoint ${dir} is incomplete or torn: manifest.json is missing`,
        { cause: error },
      );
    }
    throw error;
  }
  return parseJson(dir, CHECKPOINT_FILES.manifest, text, manifestSchema);
}

function parseJson<T>(dir: string, name: string, text: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`checkpoint ${dir} is corrupt: ${name} is not valid JSON`, {
      cause: error,
    });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new CheckpointError(
      `checkpoint ${dir} is invalid: ${name}: ${describeIssues(parsed.error)}`,
    );
  }
  return parsed.data;
}

/** Reads every file the manifest lists, verified; refuses a manifest that omits a needed file. */
async function readFiles(dir: string, manifest: CheckpointManifest): Promise<Map<string, Buffer>> {
  const listed = new Map(manifest.files.map((file) => [file.path, file]));
  const needed = Object.values(CHECKPOINT_FILES).filter(
    (name) => name !== CHECKPOINT_FILES.manifest,
  );
  const unlisted = needed.filter((name) => !listed.has(name));
  if (unlisted.length > 0) {
    throw new CheckpointError(
      `checkpoint ${dir} is invalid: manifest.json does not list ${unlisted.join(', ')}`,
    );
  }
  const contents = new Map<string, Buffer>();
  for (const file of listed.values())
    contents.set(file.path, await readVerifiedFile(dir, file.path, file));
  return contents;
}

/** Slices a verified .bin into tensors, checking the specs tile it exactly. */
function readTensors(
  dir: string,
  specsFile: string,
  specs: TensorSpec[],
  bin: Buffer,
): Map<string, NamedValues> {
  const tensors = new Map<string, NamedValues>();
  let offset = 0;
  for (const spec of specs) {
    const elements = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.offset !== offset || spec.length !== elements * 4 || tensors.has(spec.name)) {
      throw new CheckpointError(
        `checkpoint ${dir} is invalid: ${specsFile} entry ${spec.name} is inconsistent`,
      );
    }
    offset += spec.length;
    if (offset > bin.byteLength) {
      throw new CheckpointError(
        `checkpoint ${dir} is invalid: ${specsFile} entry ${spec.name} lies past the end of its .bin`,
      );
    }
    // Copy: the Buffer may sit at an offset that is not a multiple of 4.
    const start = bin.byteOffset + spec.offset;
    const values = new Float32Array(bin.buffer.slice(start, start + spec.length));
    tensors.set(spec.name, { name: spec.name, shape: spec.shape, values });
  }
  if (offset !== bin.byteLength) {
    throw new CheckpointError(
      `checkpoint ${dir} is invalid: ${specsFile} does not cover its .bin (${offset} of ${bin.byteLength} bytes)`,
    );
  }
  return tensors;
}

/** Checks the checkpoint's weights are exactly the model's, by name and shape. */
function matchWeights(
  dir: string,
  model: Map<string, tfl.LayerVariable>,
  saved: Map<string, NamedValues>,
): void {
  const problems: string[] = [];
  for (const [name, weight] of model) {
    const values = saved.get(name);
    if (!values) problems.push(`${name} is missing`);
    else if (!sameShape(values.shape, variableOf(weight).shape)) {
      const expected = variableOf(weight).shape.join(',');
      problems.push(
        `${name} has shape [${values.shape.join(',')}], the model expects [${expected}]`,
      );
    }
  }
  const extra = [...saved.keys()].filter((name) => !model.has(name));
  if (extra.length > 0) problems.push(`the model has no weight ${listSome(extra)}`);
  if (problems.length > 0) {
    throw new CheckpointError(`checkpoint ${dir} does not fit this model: ${listSome(problems)}`);
  }
}

/** Maps saved slots onto the model's live variable names, checking kind and shape. */
function matchSlots(
  dir: string,
  model: Map<string, tfl.LayerVariable>,
  saved: Map<string, NamedValues>,
): NamedValues[] {
  return [...saved.values()].map((slot) => {
    const { weight, kind } = splitSlotKey(slot.name);
    const layerWeight = model.get(weight);
    const variable = layerWeight && variableOf(layerWeight);
    if (
      !variable ||
      !(SLOT_KINDS as readonly string[]).includes(kind) ||
      !sameShape(slot.shape, variable.shape)
    ) {
      throw new CheckpointError(
        `checkpoint ${dir}: optimizer slot ${slot.name} does not fit any weight of this model`,
      );
    }
    return { ...slot, name: `${variable.name}/${kind}` };
  });
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint} into `model` (built with the same config,
 * in this or another process). Every file is verified against manifest.json and every weight
 * checked by name and shape before anything is assigned, so a refused load leaves the model
 * untouched. Throws {@link CheckpointError} for a missing, torn, corrupt or mismatched
 * checkpoint; I/O errors pass through.
 */
export async function loadCheckpoint(
  dir: string,
  model: tfl.LayersModel,
): Promise<LoadedCheckpoint> {
  if (os.endianness() !== 'LE')
    throw new Error('checkpoints are little-endian; big-endian hosts are not supported');
  const F = CHECKPOINT_FILES;
  const manifest = await readManifest(dir);
  const files = await readFiles(dir, manifest);
  const text = (name: string): string => (files.get(name) as Buffer).toString('utf8');
  const weightsFile = parseJson(dir, F.weightSpecs, text(F.weightSpecs), weightsFileSchema);
  const optimizerFile = parseJson(
    dir,
    F.optimizerSpecs,
    text(F.optimizerSpecs),
    optimizerFileSchema,
  );
  const state = parseJson(dir, F.state, text(F.state), trainingStateSchema);
  const [weightsGroup] = weightsFile.weightsManifest;
  const [optimizerGroup] = optimizerFile.weightsManifest;
  const binOf = (paths: [string]): Buffer => {
    const bin = files.get(paths[0]);
    if (!bin)
      throw new CheckpointError(
        `checkpoint ${dir} is invalid: ${paths[0]} is not listed in manifest.json`,
      );
    return bin;
  };
  const savedWeights = readTensors(
    dir,
    F.weightSpecs,
    weightsGroup.weights,
    binOf(weightsGroup.paths),
  );
  const savedSlots = readTensors(
    dir,
    F.optimizerSpecs,
    optimizerGroup.weights,
    binOf(optimizerGroup.paths),
  );

  const weights = modelWeights(model);
  matchWeights(dir, weights, savedWeights);
  const slots = matchSlots(dir, weights, savedSlots);

  for (const [name, weight] of weights) {
    const saved = savedWeights.get(name) as NamedValues;
    // Assign to the variable directly: LayerVariable.write would re-apply a weight constraint.
    tf.tidy(() => variableOf(weight).assign(tf.tensor(saved.values, saved.shape, 'float32')));
  }
  return {
    optimizer: {
      iterations: optimizerFile.iterations,
      slots: new Map(
        slots.map((slot) => [slot.name, tf.tensor(slot.values, slot.shape, 'float32')]),
      ),
    },
    state,
    manifest,
  };
}
