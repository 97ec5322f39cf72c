/**
 * What the API's event loop (model-threads.ts) and a model thread (model-thread.ts) say to each
 * other. A model is named by its checkpoint id; the thread keeps the models it loaded in its own
 * bounded cache and lists them in every answer, so the event loop knows what each thread holds
 * and downloads a checkpoint only for a thread that lacks it.
 */
import type { BackendPreference } from '../../model/backend-names.js';
import type { ModelSource, Prediction } from './run-model.js';

export interface ModelThreadInit {
  /** TRAIN_BACKEND: wasm or cpu are used as named; anything else takes wasm, else cpu. */
  backend: BackendPreference;
  /** TRAIN_THREADS: the wasm backend's own compute threads. */
  backendThreads?: number;
  /** This thread's share of MODEL_CACHE_BYTES. */
  cacheBytes: number;
}

/** The model to use; `load` (a downloaded checkpoint) when the thread may not hold it yet. */
interface ModelRef {
  key: string;
  load?: ModelSource;
}

export type ModelThreadRequest =
  | (ModelRef & {
      op: 'predict';
      /** The uploaded image (transferred). */
      image: Uint8Array;
      /** The model's input: the image is resized to `size`², `channels` channels. */
      size: number;
      channels: 1 | 3;
      topK: number;
    })
  | (ModelRef & { op: 'export' });

/** Why a request failed in a way the caller should hear about. */
export type ModelThreadFailure =
  /** The thread does not hold the model and was given no checkpoint to load it from. */
  | 'missing'
  /** The image cannot be decoded (a 422). */
  | 'image'
  /** The checkpoint's files cannot be loaded into the network. */
  | 'checkpoint'
  /** The model cannot be written as a Layers model. */
  | 'export';

export type ModelThreadAnswer = {
  /** Keys of the models the thread holds after the request, least recently used first. */
  cached: string[];
  /** The compute backend the thread runs on. */
  backend: string;
} & (
  | {
      ok: true;
      predictions?: Prediction[];
      modelJson?: Record<string, unknown>;
      weights?: Uint8Array;
    }
  | { ok: false; failure: ModelThreadFailure; message: string }
);
