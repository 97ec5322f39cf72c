/**
 * Packs a main-head GoogLeNet as a standard TensorFlow.js Layers model: `model.json` (topology,
 * weights manifest, and our metadata in `userDefinedMetadata`) and one weights file, in the
 * format `tf.loadLayersModel` reads in Node or a browser with no code of ours.
 *
 * Only built-in layer classes may appear in the graph. GoogLeNet's custom layers are
 * AdaptiveAveragePooling2D (aux heads only, so never in a main-head model) and
 * LocalResponseNormalization (`norm: 'lrn'`): LRN's `(k + a·Σx²)^β` has no built-in layer
 * equivalent (there is no power layer), so such models are refused with an
 * {@link ExportError} rather than exported as something plain tfjs cannot load.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Layer classes tfjs-layers itself registers, i.e. what a plain loader knows. */
const CUSTOM_LAYER_CLASSES = new Set(['LocalResponseNormalization', 'AdaptiveAveragePooling2D']);

/** Name of the single weights file, as the tfjs converter names shards. */
export const WEIGHTS_FILE = 'group1-shard1of1.bin';

/** How a raw image becomes the model's input: `x = (pixel / 255 - mean[c]) / std[c]`, NHWC. */
export interface InputNormalization {
  /** Pixels are first scaled by this (1/255: bytes to [0, 1]). */
  scale: number;
  mean: number[];
  std: number[];
}

/** What a user needs besides the weights, stored in model.json's `userDefinedMetadata`. */
export interface ExportMetadata {
  /** Class names, index = output unit. */
  labels: string[];
  inputSize: number;
  channels: 1 | 3;
  /** `rgb` or `grayscale`; images are resized (stretched) to inputSize x inputSize. */
  colorSpace: 'rgb' | 'grayscale';
  normalization: InputNormalization;
  /** The output is logits: apply softmax for probabilities. */
  output: 'logits';
  /** Where the weights came from. */
  source: { runId: string; checkpointStep: number };
}

/** The model cannot be exported as a plain Layers model. */
export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

export interface ExportedLayersModel {
  /** Contents of model.json. */
  modelJson: Record<string, unknown>;
  /** Contents of {@link WEIGHTS_FILE}. */
  weights: Uint8Array;
}

/** Serialises `model` (a main-head model) with `metadata`; refuses custom layer classes. */
export async function exportLayersModel(
  model: tfl.LayersModel,
  metadata: ExportMetadata,
): Promise<ExportedLayersModel> {
  const custom = model.layers
    .map((layer) => layer.getClassName())
    .filter((name) => CUSTOM_LAYER_CLASSES.has(name));
  if (custom.length > 0) {
    throw new ExportError(
      `the model uses ${[...new Set(custom)].join(', ')}, which plain TensorFlow.js cannot load ` +
        '(models trained with norm "lrn" cannot be exported)',
    );
  }
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved?.modelTopology || !saved.weightSpecs || !saved.weightData) {
    throw new Error('tfjs saved no topology or weights');
  }
  const data = saved.weightData;
  const weights = new Uint8Array(
    data instanceof ArrayBuffer ? data : tf.io.concatenateArrayBuffers(data),
  );
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version_core}`,
      convertedBy: null,
      modelTopology: saved.modelTopology,
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights: saved.weightSpecs }],
      userDefinedMetadata: metadata,
    },
    weights,
  };
}
