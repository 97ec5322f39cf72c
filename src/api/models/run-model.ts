/**
 * The TensorFlow.js half of model export and prediction, loaded by the API only when a model
 * route is first used (the API starts without TensorFlow.js): build a run's GoogLeNet, load a
 * checkpoint from the artifact store into it, keep its main head; pack that as a plain Layers
 * model archive; classify images with it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import tar from 'tar-stream';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import { downloadCheckpoint } from '../../checkpoints/checkpoint-download.js';
import { SYNTHETIC_NORMALIZATION } from '../../data/synthetic.js';
import type { DataInfo } from '../../spec/data-info.js';
import type { TrainRunSpec } from '../../spec/train-run-spec.js';
import { loadBackend, type BackendPreference } from '../../model/backend.js';
import { loadCheckpoint } from '../../checkpoints/checkpoint.js';
import { createGoogLeNet } from '../../model/googlenet.js';
import {
  exportLayersModel,
  WEIGHTS_FILE,
  type ExportMetadata,
} from '../../model/layers-model-export.js';
import { mainHeadModel } from '../../model/main-head-model.js';
import type { CachedModel } from './model-cache.js';

export interface RunModel extends CachedModel {
  model: tfl.LayersModel;
  metadata: ExportMetadata;
}

export interface Prediction {
  label: string;
  probability: number;
}

let backend: Promise<unknown> | undefined;

/** Loads the compute backend once per process (the same preference order as the worker). */
export function ensureBackend(preference: BackendPreference, threads?: number): Promise<unknown> {
  backend ??= loadBackend({ backend: preference, ...(threads !== undefined ? { threads } : {}) });
  return backend;
}

/** Label names for a run's classes: as its data set named them, else numbered. */
function labelsOf(spec: TrainRunSpec, dataInfo?: DataInfo): string[] {
  return Array.from(
    { length: spec.model.numClasses },
    (_, i) => dataInfo?.classes[i] ?? `class-${i}`,
  );
}

/**
 * Downloads the checkpoint at `location` (into a temporary directory under `scratchRoot`,
 * removed afterwards), loads it into the run's network and returns the main head alone.
 */
export async function loadRunModel(options: {
  artifacts: ArtifactStore;
  scratchRoot: string;
  runId: string;
  spec: TrainRunSpec;
  location: string;
  step: number;
  /** The classes and normalisation the run stored (synthetic data's fixed ones when absent). */
  dataInfo?: DataInfo;
}): Promise<RunModel> {
  const { spec } = options;
  const config = {
    numClasses: spec.model.numClasses,
    inputSize: spec.model.inputSize,
    channels: spec.model.channels,
    width: spec.model.width,
    auxLogits: spec.model.auxLogits,
    norm: spec.model.norm,
    seed: spec.train.seed,
  };
  const tmp = await mkdtemp(path.join(path.resolve(options.scratchRoot), 'model-'));
  const trained = createGoogLeNet(config);
  try {
    const dir = path.join(tmp, 'checkpoint');
    await downloadCheckpoint(options.artifacts, options.location, dir);
    const loaded = await loadCheckpoint(dir, trained);
    tf.dispose([...loaded.optimizer.slots.values()]);
    const model = mainHeadModel(trained, config);
    const bytes = model.weights.reduce(
      (sum, w) => sum + 4 * w.shape.reduce((n: number, d) => n * (d ?? 1), 1),
      0,
    );
    return {
      model,
      bytes,
      dispose: () => model.dispose(),
      metadata: {
        labels: labelsOf(spec, options.dataInfo),
        inputSize: spec.model.inputSize,
        channels: spec.model.channels,
        colorSpace: spec.model.channels === 3 ? 'rgb' : 'grayscale',
        normalization: {
          scale: 1 / 255,
          mean:
            options.dataInfo?.normalization.mean ??
            Array(spec.model.channels).fill(SYNTHETIC_NORMALIZATION.mean),
          std:
            options.dataInfo?.normalization.std ??
            Array(spec.model.channels).fill(SYNTHETIC_NORMALIZATION.std),
        },
        output: 'logits',
        source: { runId: options.runId, checkpointStep: options.step },
      },
    };
  } finally {
    trained.dispose();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** model.json and the weights file as one tar archive. */
export async function exportArchive(run: RunModel): Promise<Readable> {
  const { modelJson, weights } = await exportLayersModel(run.model, run.metadata);
  const pack = tar.pack();
  pack.entry({ name: 'model.json' }, `${JSON.stringify(modelJson, null, 2)}\n`);
  pack.entry(
    { name: WEIGHTS_FILE },
    Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength),
  );
  pack.finalize();
  return Readable.from(pack);
}

/**
 * Top-k classes for one image given as raw bytes, `inputSize² × channels`, HWC (what
 * image-input.ts produces), normalised as the metadata says.
 */
export function predictTopK(run: RunModel, pixels: Uint8Array, k: number): Prediction[] {
  const { inputSize: s, channels: c, normalization: n, labels } = run.metadata;
  const input = new Float32Array(s * s * c);
  for (let i = 0; i < input.length; i++) {
    const ch = i % c;
    input[i] = ((pixels[i] ?? 0) * n.scale - (n.mean[ch] ?? 0)) / (n.std[ch] ?? 1);
  }
  const [values, indices] = tf.tidy(() => {
    const logits = run.model.predict(tf.tensor4d(input, [1, s, s, c])) as tf.Tensor2D;
    const top = tf.topk(tf.softmax(logits), Math.min(k, labels.length));
    return [top.values.dataSync(), top.indices.dataSync()];
  });
  return Array.from(indices, (index, i) => ({
    label: labels[index] ?? String(index),
    probability: values[i] ?? 0,
  }));
}
