/**
 * How much memory a job's child process will need, estimated from its spec alone (nothing is
 * built), so the API can refuse a job no worker can hold and the worker can say, when a child
 * dies for memory, what it was expected to take.
 *
 * The estimate is the sum of five parts, each a count from the network's shape
 * (googlenet-size.ts) times bytes measured on the wasm backend:
 *
 * - runtime: Node, TensorFlow.js and its WebAssembly module, before any model (a tiny run's
 *   peak RSS minus its tiny model);
 * - parameters: per trainable weight, the weight, its gradient, the optimizer's slots, the
 *   temporaries of an update and the checkpoint's serialised copy — measured per optimizer,
 *   since Adam's update makes several full-size temporaries per variable;
 * - activations: per float a layer outputs, the value the gradient tape keeps, its gradient and
 *   the kernels' scratch (im2col) — about 4.5 floats;
 * - data: the batches the input pipeline holds (prefetched, plus the one in use), as float32.
 *
 * Measured here (peak RSS of the training child, `VmHWM`, 2 steps, wasm, one thread, two
 * batches prefetched; 10 classes) against the estimate: 32px w0.125 batch 8 adam 206 MiB
 * (est. 205), batch 64 237 (234); 64px w0.25 batch 32 339 (346); 128px w0.25 batch 16 434
 * (450), batch 64 1075 (1096); 32px w0.5 batch 16 395 (399); 32px w1 batch 16 adam 993 (960),
 * sgd momentum 0.9 538 (526), sgd momentum 0 449 (447); 64px w0.5 batch 32 batch norm adam 706
 * (659). Evaluation (batch of the eval run, main head only): 128px w0.25 batch 64 312 MiB
 * (est. 406), 32px w1 batch 128 434 (est. 445). Native backends (tfjs-node) allocate differently;
 * the estimate is a guide to refuse what cannot fit anywhere, not a promise.
 */
import type { z } from 'zod';
import type { modelSpecSchema } from '../spec/model-spec.js';
import type { OptimizerConfig } from '../spec/optimizer-config.js';
import { googLeNetSize } from './googlenet-size.js';

type ModelSpec = Omit<z.input<typeof modelSpecSchema>, 'arch'> & { arch?: 'googlenet' };

/** A job's expected peak memory, in bytes, by part. */
export interface MemoryEstimate {
  runtime: number;
  parameters: number;
  activations: number;
  data: number;
  total: number;
}

const MiB = 2 ** 20;

/** Node, tfjs and its wasm module with a network of a few thousand weights. */
export const RUNTIME_BYTES = 190 * MiB;

/** Bytes per trainable weight during training, by optimizer (see the file's comment). */
const TRAIN_BYTES_PER_PARAMETER = { sgd: 20, 'sgd-momentum': 28, adam: 72 } as const;

/** Bytes per activation float in a training step (tape, gradient, kernel scratch). */
const TRAIN_BYTES_PER_ACTIVATION = 18;

/**
 * Evaluation keeps no tape and no optimizer: the weights with the checkpoint's loaded and
 * decoded copies, and the batch's outputs, which its tidy scope holds until it is scored.
 */
const EVAL_BYTES_PER_PARAMETER = 28;
const EVAL_BYTES_PER_ACTIVATION = 4;

function optimizerKind(optimizer: Pick<OptimizerConfig, 'type'> & { momentum?: number }) {
  if (optimizer.type === 'adam') return 'adam';
  return (optimizer.momentum ?? 0.9) > 0 ? 'sgd-momentum' : 'sgd';
}

/** float32 images of one batch. */
function batchBytes(model: ModelSpec, batchSize: number): number {
  const side = model.inputSize ?? 224;
  return batchSize * side * side * (model.channels ?? 3) * 4;
}

function sizeOf(model: ModelSpec) {
  const config = { ...model };
  delete config.arch;
  return googLeNetSize(config);
}

function sum(parts: Omit<MemoryEstimate, 'total'>): MemoryEstimate {
  return { ...parts, total: parts.runtime + parts.parameters + parts.activations + parts.data };
}

/** The peak memory of a training job's child. */
export function estimateTrainingMemory(spec: {
  model: ModelSpec;
  train: {
    batchSize: number;
    optimizer: Pick<OptimizerConfig, 'type'> & { momentum?: number };
  };
  /** Batches the pipeline requests ahead (DATA_PREFETCH_BATCHES). */
  prefetchBatches: number;
}): MemoryEstimate {
  const size = sizeOf(spec.model);
  const { batchSize, optimizer } = spec.train;
  return sum({
    runtime: RUNTIME_BYTES,
    parameters: size.trainableParameters * TRAIN_BYTES_PER_PARAMETER[optimizerKind(optimizer)],
    activations: batchSize * size.activationsPerImage * TRAIN_BYTES_PER_ACTIVATION,
    data: (spec.prefetchBatches + 1) * batchBytes(spec.model, batchSize),
  });
}

/** The peak memory of an eval job's child (forward passes of the main head). */
export function estimateEvalMemory(spec: { model: ModelSpec; batchSize: number }): MemoryEstimate {
  const size = sizeOf({ ...spec.model, auxLogits: false });
  return sum({
    runtime: RUNTIME_BYTES,
    parameters: size.parameters * EVAL_BYTES_PER_PARAMETER,
    activations: spec.batchSize * size.activationsPerImage * EVAL_BYTES_PER_ACTIVATION,
    data: 2 * batchBytes(spec.model, spec.batchSize),
  });
}

/** `bytes` for people: `1.2 GiB`, `340 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 40) return `${(bytes / 2 ** 40).toFixed(1)} TiB`;
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  return `${Math.round(bytes / MiB)} MiB`;
}
