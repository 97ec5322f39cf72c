/**
 * The TensorFlow.js half of model export and prediction, loaded only in the API's model threads
 * (model-thread.ts), never on its event loop: build a run's GoogLeNet, load a downloaded
 * checkpoint into it, keep its main head; write that as a plain Layers model; classify images
 * with it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { SYNTHETIC_NORMALIZATION } from '../../data/synthetic.js';
import type { DataInfo } from '../../spec/data-info.js';
import type { TrainRunSpec } from '../../spec/train-run-spec.js';
import { loadBackend, type BackendPreference, type LoadedBackend } from '../../model/backend.js';
import { loadCheckpoint } from '../../checkpoints/checkpoint.js';
import { createGoogLeNet } from '../../model/googlenet.js';
import {
  exportLayersModel,
  type ExportedLayersModel,
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

/**
 * Loads the compute backend of a model thread: wasm or cpu. tfjs-node's native add-on is not
 * used in worker threads (loading it in a second thread fails: tfjs issues 2079 and 8388), so a
 * preference for it, or `auto`, takes wasm and else cpu.
 */
export async function loadThreadBackend(
  preference: BackendPreference,
  threads?: number,
): Promise<LoadedBackend> {
  const candidates = preference === 'wasm' || preference === 'cpu' ? [preference] : ['wasm', 'cpu'];
  let failure: unknown;
  for (const backend of candidates as Array<'wasm' | 'cpu'>) {
    try {
      return await loadBackend({ backend, ...(threads !== undefined ? { threads } : {}) });
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/** Label names for a run's classes: as its data set named them, else numbered. */
function labelsOf(spec: TrainRunSpec, dataInfo?: DataInfo): string[] {
  return Array.from(
    { length: spec.model.numClasses },
    (_, i) => dataInfo?.classes[i] ?? `class-${i}`,
  );
}

/** A checkpoint downloaded into `dir`, and what the run says about its model. */
export interface ModelSource {
  dir: string;
  runId: string;
  spec: TrainRunSpec;
  step: number;
  /** The classes and normalisation the run stored (synthetic data's fixed ones when absent). */
  dataInfo?: DataInfo;
}

/** Loads the checkpoint in `source.dir` into the run's network and returns the main head alone. */
export async function loadRunModel(source: ModelSource): Promise<RunModel> {
  const { spec } = source;
  const config = {
    numClasses: spec.model.numClasses,
    inputSize: spec.model.inputSize,
    channels: spec.model.channels,
    width: spec.model.width,
    auxLogits: spec.model.auxLogits,
    norm: spec.model.norm,
    seed: spec.train.seed,
  };
  const trained = createGoogLeNet(config);
  try {
    const loaded = await loadCheckpoint(source.dir, trained);
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
        labels: labelsOf(spec, source.dataInfo),
        inputSize: spec.model.inputSize,
        channels: spec.model.channels,
        colorSpace: spec.model.channels === 3 ? 'rgb' : 'grayscale',
        normalization: {
          scale: 1 / 255,
          mean:
            source.dataInfo?.normalization.mean ??
            Array(spec.model.channels).fill(SYNTHETIC_NORMALIZATION.mean),
          std:
            source.dataInfo?.normalization.std ??
            Array(spec.model.channels).fill(SYNTHETIC_NORMALIZATION.std),
        },
        output: 'logits',
        source: { runId: source.runId, checkpointStep: source.step },
      },
    };
  } finally {
    trained.dispose();
  }
}

/** model.json and the weights of a loaded model (packed into an archive by the caller). */
export function exportRunModel(run: RunModel): Promise<ExportedLayersModel> {
  return exportLayersModel(run.model, run.metadata);
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
