/**
 * A run's trained model as users take it away (export) or query it (predict). Picks the
 * checkpoint, keeps loaded models in a memory-bounded LRU cache, and loads TensorFlow.js (and
 * the compute backend) only on first use, so the rest of the API starts without it.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import { isUnusableCheckpoint } from '../../checkpoints/checkpoint-download.js';
import type { Config } from '../../config.js';
import type { PrismaClient } from '../../db/index.js';
import { dataInfoSchema } from '../../spec/data-info.js';
import { metricIsBetter } from '../../spec/metric-name.js';
import { trainRunSpecSchema, type TrainRunSpec } from '../../spec/train-run-spec.js';
import type { Logger } from '../../logger.js';
import {
  CheckpointUnusableError,
  ModelNotExportableError,
  RunConflictError,
  RunNotFoundError,
} from '../../runs/run-errors.js';
import { imagePixels } from './image-input.js';
import { createModelCache } from './model-cache.js';
import type { CheckpointSelector } from './models.schemas.js';
import type { Prediction, RunModel } from './run-model.js';

export interface RunModelsDeps {
  prisma: PrismaClient;
  artifacts: ArtifactStore;
  config: Pick<Config, 'MODEL_CACHE_BYTES' | 'SCRATCH_ROOT' | 'TRAIN_BACKEND' | 'TRAIN_THREADS'>;
  logger: Logger;
}

/** Classes a prediction reports. */
const TOP_K = 5;

/**
 * Export and prediction for training runs' checkpoints. Throws the run domain's errors
 * (src/runs/run-errors.ts): not found, not a training run, checkpoint unusable, not exportable.
 */
export function createRunModelsService(deps: RunModelsDeps) {
  const { prisma } = deps;
  const cache = createModelCache<RunModel>(deps.config.MODEL_CACHE_BYTES);
  const loadEngine = lazyEngine(deps.config);

  /** Runs `use` with the cached (or freshly loaded) main-head model of `resolved`. */
  async function withModel<T>(
    runId: string,
    resolved: ResolvedModel,
    use: (model: RunModel, e: Engine) => Promise<T> | T,
  ): Promise<T> {
    const e = await loadEngine();
    return cache.use(
      resolved.checkpoint.id,
      () => {
        deps.logger.info({ runId, step: resolved.checkpoint.step }, 'loading model into the cache');
        return loadModel(e, deps, runId, resolved);
      },
      (model) => use(model, e),
    );
  }

  return {
    /** The Layers model archive (tar: model.json + weights) of the selected checkpoint. */
    async exportModel(
      runId: string,
      selector: CheckpointSelector,
    ): Promise<{ fileName: string; archive: Readable }> {
      const resolved = await resolveModel(prisma, runId, selector);
      const archive = await withModel(runId, resolved, (model, e) => exportArchive(e, model));
      const fileName = `googlenet-${runId}-step-${resolved.checkpoint.step}.tar`;
      return { fileName, archive };
    },

    /** Top-5 classes of one image, from the run's best checkpoint (else its latest). */
    async predict(
      runId: string,
      image: Buffer,
    ): Promise<{
      runId: string;
      checkpoint: { id: string; step: number };
      predictions: Prediction[];
    }> {
      const resolved = await resolveModel(prisma, runId, 'best');
      const { model: m } = resolved.spec;
      const pixels = await imagePixels(image, m.inputSize, m.channels);
      const predictions = await withModel(runId, resolved, (model, e) =>
        e.predictTopK(model, pixels, TOP_K),
      );
      const { id, step } = resolved.checkpoint;
      return { runId, checkpoint: { id, step }, predictions };
    },

    /** Frees every cached model. */
    close(): void {
      cache.clear();
    },
  };
}

export type RunModelsService = ReturnType<typeof createRunModelsService>;

/** TensorFlow.js and the model code built on it, loaded on first use. */
type Engine = typeof import('./run-model.js');

/**
 * Returns a loader of the engine that imports TensorFlow.js and readies the compute backend on
 * its first call only, so the rest of the API starts (and runs) without them.
 */
function lazyEngine(config: RunModelsDeps['config']): () => Promise<Engine> {
  let engine: Promise<Engine> | undefined;
  return async () => {
    engine ??= import('./run-model.js');
    const e = await engine;
    await e.ensureBackend(config.TRAIN_BACKEND, config.TRAIN_THREADS);
    return e;
  };
}

/** A training run's spec and data info, with the checkpoint a selector picked. */
type ResolvedModel = Awaited<ReturnType<typeof resolveModel>>;

/** The run's spec and the checkpoint `selector` names; not found when either is missing. */
async function resolveModel(prisma: PrismaClient, runId: string, selector: CheckpointSelector) {
  const run = await prisma.run.findUnique({ where: { id: runId } });
  if (!run) throw new RunNotFoundError(`run ${runId}`);
  if (run.kind !== 'train') {
    throw new RunConflictError(`run ${runId} is not a training run`);
  }
  const spec: TrainRunSpec = trainRunSpecSchema.parse(run.config);
  const rows = await prisma.checkpoint.findMany({
    where: { runId },
    orderBy: { step: 'desc' },
  });
  const checkpoint = pickCheckpoint(rows, selector, spec.checkpoint?.metric ?? 'val/accuracy');
  if (!checkpoint) {
    const which = typeof selector === 'number' ? `step ${selector}` : selector;
    throw new RunNotFoundError(`checkpoint ${which} of run ${runId}`);
  }
  const info = dataInfoSchema.safeParse(run.dataInfo);
  return { spec, checkpoint, dataInfo: info.success ? info.data : undefined };
}

/**
 * The checkpoint `selector` names among `rows` (newest first): a step, the latest, or the best
 * by `metric`; the best falls back to the latest when no checkpoint recorded the metric.
 */
function pickCheckpoint<C extends { step: number; metrics: unknown }>(
  rows: C[],
  selector: CheckpointSelector,
  metric: string,
): C | undefined {
  if (typeof selector === 'number') return rows.find((c) => c.step === selector);
  let checkpoint = rows[0];
  if (selector === 'best') {
    let bestScore: number | undefined;
    for (const row of rows) {
      const score = (row.metrics as Record<string, number> | null)?.[metric];
      if (typeof score !== 'number') continue;
      if (bestScore === undefined || metricIsBetter(metric, score, bestScore)) {
        bestScore = score;
        checkpoint = row;
      }
    }
  }
  return checkpoint;
}

/** Loads the main-head model of `resolved`'s checkpoint; its stored files may be unusable. */
async function loadModel(
  e: Engine,
  deps: RunModelsDeps,
  runId: string,
  resolved: ResolvedModel,
): Promise<RunModel> {
  const { spec, checkpoint, dataInfo } = resolved;
  try {
    return await e.loadRunModel({
      artifacts: deps.artifacts,
      scratchRoot: path.resolve(deps.config.SCRATCH_ROOT),
      runId,
      spec,
      location: checkpoint.location,
      step: checkpoint.step,
      ...(dataInfo ? { dataInfo } : {}),
    });
  } catch (error) {
    if (!isUnusableCheckpoint(error)) throw error;
    throw new CheckpointUnusableError(error.message);
  }
}

/** The model's Layers archive; a model the format cannot hold is not exportable. */
async function exportArchive(e: Engine, model: RunModel): Promise<Readable> {
  try {
    return await e.exportArchive(model);
  } catch (error) {
    // Matched by name: the model code (and its ExportError class) is imported only on first use.
    if (error instanceof Error && error.name === 'ExportError') {
      throw new ModelNotExportableError(error.message);
    }
    throw error;
  }
}
