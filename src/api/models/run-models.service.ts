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
import { HttpError } from '../errors.js';
import { RunConflictError, RunNotFoundError } from '../../runs/run-errors.js';
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

export function createRunModelsService(deps: RunModelsDeps) {
  const { prisma } = deps;
  const cache = createModelCache<RunModel>(deps.config.MODEL_CACHE_BYTES);
  let engine: Promise<typeof import('./run-model.js')> | undefined;
  const loadEngine = async () => {
    engine ??= import('./run-model.js');
    const e = await engine;
    await e.ensureBackend(deps.config.TRAIN_BACKEND, deps.config.TRAIN_THREADS);
    return e;
  };

  /** The run's spec and the checkpoint `selector` names; 404 when either is missing. */
  async function resolve(runId: string, selector: CheckpointSelector) {
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
    let checkpoint = rows[0];
    if (typeof selector === 'number') {
      checkpoint = rows.find((c) => c.step === selector);
    } else if (selector === 'best') {
      const metric = spec.checkpoint?.metric ?? 'val/accuracy';
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
    if (!checkpoint) {
      const which = typeof selector === 'number' ? `step ${selector}` : selector;
      throw new RunNotFoundError(`checkpoint ${which} of run ${runId}`);
    }
    const info = dataInfoSchema.safeParse(run.dataInfo);
    return { spec, checkpoint, dataInfo: info.success ? info.data : undefined };
  }

  /** Runs `use` with the cached (or freshly loaded) main-head model of `resolved`. */
  async function withModel<T>(
    runId: string,
    resolved: Awaited<ReturnType<typeof resolve>>,
    use: (model: RunModel, e: typeof import('./run-model.js')) => Promise<T> | T,
  ): Promise<T> {
    const { spec, checkpoint, dataInfo } = resolved;
    const e = await loadEngine();
    const loadModel = async () => {
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
        throw new HttpError(409, 'Checkpoint unusable', error.message);
      }
    };
    return cache.use(
      checkpoint.id,
      () => {
        deps.logger.info({ runId, step: checkpoint.step }, 'loading model into the cache');
        return loadModel();
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
      const resolved = await resolve(runId, selector);
      const archive = await withModel(runId, resolved, async (model, e) => {
        try {
          return await e.exportArchive(model);
        } catch (error) {
          if (error instanceof Error && error.name === 'ExportError') {
            throw new HttpError(422, 'Not exportable', error.message);
          }
          throw error;
        }
      });
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
      const resolved = await resolve(runId, 'best');
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
