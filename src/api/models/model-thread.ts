/**
 * A model thread: the only place the API runs TensorFlow.js. It decodes uploaded images, loads
 * checkpoints the event loop downloaded for it, keeps the models in its own byte-bounded cache
 * (its share of MODEL_CACHE_BYTES: the weights live where inference runs) and answers
 * predictions and exports, one request at a time (thread-pool.ts).
 */
import { workerData, type Transferable } from 'node:worker_threads';
import { isUnusableCheckpoint } from '../../checkpoints/checkpoint-download.js';
import { ImageUnreadableError, imagePixels } from './image-input.js';
import { createModelCache } from './model-cache.js';
import type {
  ModelThreadAnswer,
  ModelThreadFailure,
  ModelThreadInit,
  ModelThreadRequest,
} from './model-thread-protocol.js';
import {
  exportRunModel,
  loadRunModel,
  loadThreadBackend,
  predictTopK,
  type RunModel,
} from './run-model.js';
import { answerRequests } from './thread-pool.js';

const init = workerData as ModelThreadInit;
const cache = createModelCache<RunModel>(init.cacheBytes);
const backend = loadThreadBackend(init.backend, init.backendThreads);
// Not a crash: a backend that cannot load fails each request, which says why.
backend.catch(() => undefined);

/** An error the caller is told about by kind; anything else is a bug (a 500). */
class Refusal extends Error {
  constructor(
    readonly failure: ModelThreadFailure,
    message: string,
  ) {
    super(message);
  }
}

function refusalOf(error: unknown): Refusal | undefined {
  if (error instanceof Refusal) return error;
  if (error instanceof ImageUnreadableError) return new Refusal('image', error.message);
  if (isUnusableCheckpoint(error)) return new Refusal('checkpoint', error.message);
  // Matched by name, as the model code's ExportError is not imported here.
  if (error instanceof Error && error.name === 'ExportError') {
    return new Refusal('export', error.message);
  }
  return undefined;
}

async function serve(
  request: ModelThreadRequest,
): Promise<{ body: Partial<ModelThreadAnswer>; transfer?: Transferable[] }> {
  await backend;
  const load = async () => {
    if (!request.load) throw new Refusal('missing', `model ${request.key} is not loaded here`);
    return loadRunModel(request.load);
  };
  if (request.op === 'predict') {
    // Decoded first: a bad image costs no model load.
    const pixels = await imagePixels(request.image, request.size, request.channels);
    const predictions = await cache.use(request.key, load, (model) =>
      predictTopK(model, pixels, request.topK),
    );
    return { body: { ok: true, predictions } };
  }
  const { modelJson, weights } = await cache.use(request.key, load, (model) =>
    exportRunModel(model),
  );
  return { body: { ok: true, modelJson, weights }, transfer: [weights.buffer as ArrayBuffer] };
}

answerRequests(async (request: ModelThreadRequest) => {
  let answer: { body: Partial<ModelThreadAnswer>; transfer?: Transferable[] };
  try {
    answer = await serve(request);
  } catch (error) {
    const refusal = refusalOf(error);
    if (!refusal) throw error;
    answer = { body: { ok: false, failure: refusal.failure, message: refusal.message } };
  }
  return {
    body: { ...answer.body, cached: cache.keys(), backend: (await backend).name },
    ...(answer.transfer ? { transfer: answer.transfer } : {}),
  };
});
