/**
 * A run's trained model as users take it away (export) or query it (predict). Picks the
 * checkpoint; the model itself is loaded, cached and run in the API's model threads
 * (model-threads.ts), so TensorFlow.js never runs on the event loop.
 */
import type { Readable } from 'node:stream';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import type { PrismaClient } from '../../db/index.js';
import { dataInfoSchema } from '../../spec/data-info.js';
import { metricIsBetter } from '../../spec/metric-name.js';
import { trainRunSpecSchema } from '../../spec/train-run-spec.js';
import type { Logger } from '../../logger.js';
import { RunConflictError, RunNotFoundError } from '../../runs/run-errors.js';
import { modelArchive } from './model-archive.js';
import { createModelThreads, type ModelThreadsConfig, type ModelToServe } from './model-threads.js';
import type { CheckpointSelector } from './models.schemas.js';
import type { Prediction } from './run-model.js';

export interface RunModelsDeps {
  prisma: PrismaClient;
  artifacts: ArtifactStore;
  config: ModelThreadsConfig;
  logger: Logger;
}

/** Classes a prediction reports. */
const TOP_K = 5;

/**
 * Export and prediction for training runs' checkpoints. Throws the run domain's errors
 * (src/runs/run-errors.ts): not found, not a training run, checkpoint unusable, not exportable,
 * unreadable image, model threads busy.
 */
export function createRunModelsService(deps: RunModelsDeps) {
  const { prisma } = deps;
  const threads = createModelThreads(deps);

  return {
    /** The Layers model archive (tar: model.json + weights) of the selected checkpoint. */
    async exportModel(
      runId: string,
      selector: CheckpointSelector,
      signal?: AbortSignal,
    ): Promise<{ fileName: string; archive: Readable }> {
      const resolved = await resolveModel(prisma, runId, selector);
      const { modelJson, weights } = await threads.exportModel(resolved, signal);
      const fileName = `googlenet-${runId}-step-${resolved.checkpoint.step}.tar`;
      return { fileName, archive: modelArchive(modelJson, weights) };
    },

    /** Top-5 classes of one image, from the run's best checkpoint (else its latest). */
    async predict(
      runId: string,
      image: Uint8Array,
      signal?: AbortSignal,
    ): Promise<{
      runId: string;
      checkpoint: { id: string; step: number };
      predictions: Prediction[];
    }> {
      const resolved = await resolveModel(prisma, runId, 'best');
      const predictions = await threads.predict(resolved, image, TOP_K, signal);
      const { id, step } = resolved.checkpoint;
      return { runId, checkpoint: { id, step }, predictions };
    },

    /** Terminates the model threads and frees every model they hold. */
    close(): Promise<void> {
      return threads.close();
    },
  };
}

export type RunModelsService = ReturnType<typeof createRunModelsService>;

/** The run's spec and the checkpoint `selector` names; not found when either is missing. */
async function resolveModel(
  prisma: PrismaClient,
  runId: string,
  selector: CheckpointSelector,
): Promise<ModelToServe> {
  const run = await prisma.run.findUnique({ where: { id: runId } });
  if (!run) throw new RunNotFoundError(`run ${runId}`);
  if (run.kind !== 'train') {
    throw new RunConflictError(`run ${runId} is not a training run`);
  }
  const spec = trainRunSpecSchema.parse(run.config);
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
  return { runId, spec, checkpoint, dataInfo: info.success ? info.data : undefined };
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
