/**
 * The API's model threads, seen from its event loop: predictions and exports go to a bounded
 * pool (PREDICT_THREADS threads, PREDICT_QUEUE_LENGTH waiting), so a heavy model never holds the
 * loop that answers every other request. The event loop downloads a checkpoint for a thread
 * that does not hold it yet (it owns the connections; the thread only computes) and turns the
 * pool's refusals into the run domain's errors.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import { downloadCheckpoint, isUnusableCheckpoint } from '../../checkpoints/checkpoint-download.js';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
import {
  CheckpointUnusableError,
  ModelNotExportableError,
  ModelUnavailableError,
  UnusableInputError,
} from '../../runs/run-errors.js';
import type { DataInfo } from '../../spec/data-info.js';
import type { TrainRunSpec } from '../../spec/train-run-spec.js';
import type {
  ModelThreadAnswer,
  ModelThreadInit,
  ModelThreadRequest,
} from './model-thread-protocol.js';
import {
  createThreadPool,
  ThreadCrashedError,
  ThreadPoolClosedError,
  ThreadPoolFullError,
  type PoolThread,
} from './thread-pool.js';

export type ModelThreadsConfig = Pick<
  Config,
  | 'MODEL_CACHE_BYTES'
  | 'PREDICT_THREADS'
  | 'PREDICT_QUEUE_LENGTH'
  | 'SCRATCH_ROOT'
  | 'TRAIN_BACKEND'
  | 'TRAIN_THREADS'
>;

/** A run's model as the service resolved it: which checkpoint, and the run's spec. */
export interface ModelToServe {
  runId: string;
  spec: TrainRunSpec;
  checkpoint: { id: string; step: number; location: string };
  dataInfo?: DataInfo | undefined;
}

/** A request to a thread, less the model it names (added here). */
type Work = ModelThreadRequest extends infer R
  ? R extends ModelThreadRequest
    ? Omit<R, 'key' | 'load'>
    : never
  : never;
type Answer = ModelThreadAnswer & { ok: true };

/**
 * Starts model-thread beside this file: the .js file when built; under tsx (dev, tests) the .ts
 * file through tsx's loader, registered inside the thread (as batch-pipeline.ts does).
 */
function startModelThread(init: ModelThreadInit): Worker {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  const file = path.join(path.dirname(here), `model-thread${ext}`);
  if (ext !== '.ts') return new Worker(file, { workerData: init });
  const url = JSON.stringify(pathToFileURL(file).href);
  const code = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${url}); });`;
  return new Worker(code, { eval: true, workerData: init });
}

export interface ModelThreadsDeps {
  artifacts: ArtifactStore;
  config: ModelThreadsConfig;
  logger: Logger;
}

export function createModelThreads(deps: ModelThreadsDeps) {
  const { config, logger } = deps;
  const scratchRoot = path.resolve(config.SCRATCH_ROOT);
  /** What each live thread holds (by thread id), from its latest answer. */
  const holds = new Map<number, Set<string>>();
  const pool = modelThreadPool(config, (threadId, error) => {
    holds.delete(threadId);
    logger.error(
      { err: error, threadId },
      'a model thread stopped; the next request starts another',
    );
  });

  /** Posts `request` to `thread` and records what the thread holds afterwards. */
  async function ask(thread: PoolThread, request: ModelThreadRequest): Promise<ModelThreadAnswer> {
    const answer = await post(thread, request);
    if (!holds.has(thread.id)) {
      logger.info({ threadId: thread.id, backend: answer.backend }, 'model thread ready');
    }
    holds.set(thread.id, new Set(answer.cached));
    return answer;
  }

  /** Asks `thread` to load `model` from a checkpoint downloaded for it. */
  function askWithCheckpoint(thread: PoolThread, model: ModelToServe, request: ModelThreadRequest) {
    const { runId, spec, dataInfo, checkpoint } = model;
    return withDownloadedCheckpoint(deps.artifacts, scratchRoot, checkpoint.location, (dir) => {
      logger.info({ runId, step: checkpoint.step, threadId: thread.id }, 'loading model');
      const load = { dir, runId, spec, step: checkpoint.step, ...(dataInfo ? { dataInfo } : {}) };
      return ask(thread, { ...request, load });
    });
  }

  /** Runs `work` with `model` on a thread (one that holds it, if free), as a domain result. */
  async function run(model: ModelToServe, work: Work, signal?: AbortSignal): Promise<Answer> {
    const key = model.checkpoint.id;
    try {
      const answer = await pool.use(
        async (thread) => {
          const request = { ...work, key } as ModelThreadRequest;
          if (holds.get(thread.id)?.has(key)) {
            const first = await ask(thread, request);
            if (first.ok || first.failure !== 'missing') return first;
          }
          return askWithCheckpoint(thread, model, request);
        },
        {
          prefer: (thread) => holds.get(thread.id)?.has(key) === true,
          ...(signal ? { signal } : {}),
        },
      );
      if (answer.ok) return answer;
      throw failureError(answer);
    } catch (error) {
      throw poolError(error);
    }
  }

  return {
    /** Top-k classes of `image` (JPEG, PNG or WebP bytes) by `model`. */
    async predict(model: ModelToServe, image: Uint8Array, topK: number, signal?: AbortSignal) {
      const { inputSize: size, channels } = model.spec.model;
      const answer = await run(model, { op: 'predict', image, size, channels, topK }, signal);
      return answer.predictions ?? [];
    },

    /** model.json and the weights of `model`, as a plain Layers model. */
    async exportModel(model: ModelToServe, signal?: AbortSignal) {
      const answer = await run(model, { op: 'export' }, signal);
      if (!answer.modelJson || !answer.weights) throw new Error('the model thread sent no model');
      return { modelJson: answer.modelJson, weights: answer.weights };
    },

    /** Terminates every thread (what they were doing fails with 503). */
    close: () => pool.close(),
  };
}

export type ModelThreads = ReturnType<typeof createModelThreads>;

/**
 * Posts `request` to `thread`. The image goes as a copy the thread owns: the body's buffer may
 * be a slice of Node's shared pool, which must never be transferred away.
 */
function post(thread: PoolThread, request: ModelThreadRequest): Promise<ModelThreadAnswer> {
  if (request.op !== 'predict') return thread.request<ModelThreadAnswer>(request);
  const image = new Uint8Array(request.image);
  return thread.request<ModelThreadAnswer>({ ...request, image }, [image.buffer as ArrayBuffer]);
}

/** The pool of model threads the settings describe. */
function modelThreadPool(
  config: ModelThreadsConfig,
  onThreadExit: (threadId: number, error: Error) => void,
) {
  const init: ModelThreadInit = {
    backend: config.TRAIN_BACKEND,
    ...(config.TRAIN_THREADS !== undefined ? { backendThreads: config.TRAIN_THREADS } : {}),
    // Each thread keeps its own models: together they stay within MODEL_CACHE_BYTES.
    cacheBytes: Math.floor(config.MODEL_CACHE_BYTES / config.PREDICT_THREADS),
  };
  return createThreadPool({
    start: () => startModelThread(init),
    size: config.PREDICT_THREADS,
    queueLength: config.PREDICT_QUEUE_LENGTH,
    describeLimit: (size, queueLength) =>
      `all ${size} model threads (PREDICT_THREADS) are busy and ${queueLength} requests ` +
      `already wait for one (PREDICT_QUEUE_LENGTH)`,
    onThreadExit,
  });
}

/**
 * Runs `use` with the checkpoint at `location` downloaded into a scratch directory under
 * `scratchRoot` (created if missing), removed afterwards. Files missing or corrupt in the store
 * make the checkpoint unusable.
 */
async function withDownloadedCheckpoint<T>(
  artifacts: ArtifactStore,
  scratchRoot: string,
  location: string,
  use: (dir: string) => Promise<T>,
): Promise<T> {
  await mkdir(scratchRoot, { recursive: true });
  const tmp = await mkdtemp(path.join(scratchRoot, 'model-'));
  try {
    const dir = path.join(tmp, 'checkpoint');
    try {
      await downloadCheckpoint(artifacts, location, dir);
    } catch (error) {
      if (!isUnusableCheckpoint(error)) throw error;
      throw new CheckpointUnusableError(error.message);
    }
    return await use(dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A thread's refusal as the run domain's error. */
function failureError(answer: ModelThreadAnswer & { ok: false }): Error {
  switch (answer.failure) {
    case 'image':
      return new UnusableInputError('body', answer.message);
    case 'checkpoint':
      return new CheckpointUnusableError(answer.message);
    case 'export':
      return new ModelNotExportableError(answer.message);
    case 'missing':
      return new Error(`a model thread could not load the model: ${answer.message}`);
  }
}

/** The pool's refusals as the run domain's: 503 with Retry-After; others pass unchanged. */
function poolError(error: unknown): unknown {
  if (error instanceof ThreadPoolFullError) {
    return new ModelUnavailableError(error.message, error.retryAfterSeconds);
  }
  if (error instanceof ThreadCrashedError) {
    return new ModelUnavailableError(
      `${error.message} while serving this request; it is replaced, try again`,
      1,
    );
  }
  if (error instanceof ThreadPoolClosedError) {
    return new ModelUnavailableError(`${error.message}; try another replica`, 1);
  }
  return error;
}
