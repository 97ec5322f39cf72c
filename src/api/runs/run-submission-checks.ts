/**
 * What a submission is checked against before anything is written or enqueued: its data set
 * (path, and every folder and file used, inside DATA_ROOT — 400 otherwise; exists, of its
 * format, within DATA_MAX_BYTES and DATA_MAX_IMAGES, with the model's classes — 422 otherwise)
 * and, for an eval, the checkpoint it names (404 for an unknown run or checkpoint id, 422 for a
 * run without such a checkpoint).
 */
import type { DataLimits } from '../../data/data-limits.js';
import { DataPathError } from '../../data/data-path.js';
import { inspectDataset } from '../../data/dataset-inspection.js';
import type { DataSplit } from '../../data/idx-source.js';
import { DatasetError } from '../../data/raw-image.js';
import type { PrismaClient, Checkpoint } from '../../db/index.js';
import { dataInfoSchema } from '../../spec/data-info.js';
import { metricIsBetter } from '../../spec/metric-name.js';
import { trainRunSpecSchema } from '../../spec/train-run-spec.js';
import type { DatasetSpec } from '../../spec/dataset-spec.js';
import type { EvalRunSpec } from '../../spec/eval-run-spec.js';
import { RunNotFoundError, UnusableInputError } from '../../runs/run-errors.js';
import type { CreateEvalRunBody } from './runs.schemas.js';

function unprocessable(detail: string, path = 'body.dataset'): UnusableInputError {
  return new UnusableInputError(path, detail);
}

/** Where submissions' data sets are read (DATA_ROOT) and how much of one may be held. */
export interface DataSettings {
  root: string;
  limits: DataLimits;
}

/**
 * Checks a file data set's split; returns its classes. `trainedClasses`: an eval's data set may
 * hold only classes the model was trained on.
 */
export async function checkDataset(
  data: DataSettings,
  dataset: DatasetSpec,
  numClasses: number,
  split: DataSplit,
  trainedClasses?: string[],
): Promise<void> {
  if (dataset.format === 'synthetic') return;
  let classes: string[];
  try {
    ({ classes } = await inspectDataset(data.root, dataset, split, data.limits));
  } catch (error) {
    if (error instanceof DataPathError)
      throw new UnusableInputError('body.dataset.path', error.message, { malformed: true });
    if (error instanceof DatasetError) throw unprocessable(error.message, 'body.dataset.path');
    throw error;
  }
  if (trainedClasses) {
    const unknown = classes.filter((c) => !trainedClasses.includes(c));
    if (unknown.length > 0)
      throw unprocessable(`classes the model was not trained on: ${unknown.join(', ')}`);
  } else if (classes.length !== numClasses) {
    throw unprocessable(
      `the data set has ${classes.length} classes; model.numClasses is ${numClasses}`,
      'body.dataset.numClasses',
    );
  }
}

/** The checkpoint `which` names among a run's checkpoints (newest first). */
function pick(rows: Checkpoint[], which: string, metric: string): Checkpoint | undefined {
  if (which === 'latest') return rows[0];
  if (which.startsWith('step:')) return rows.find((c) => c.step === Number(which.slice(5)));
  let best: { row: Checkpoint; score: number } | undefined;
  for (const row of rows) {
    const score = (row.metrics as Record<string, number> | null)?.[metric];
    if (typeof score !== 'number') continue;
    if (!best || metricIsBetter(metric, score, best.score)) best = { row, score };
  }
  return best?.row;
}

/** Resolves an eval submission into the spec its job carries. */
export async function resolveEvalSpec(
  prisma: PrismaClient,
  data: DataSettings,
  body: CreateEvalRunBody,
): Promise<EvalRunSpec> {
  let checkpoint: Checkpoint;
  if ('checkpointId' in body.checkpoint) {
    const row = await prisma.checkpoint.findUnique({ where: { id: body.checkpoint.checkpointId } });
    if (!row) throw new RunNotFoundError(`checkpoint ${body.checkpoint.checkpointId}`);
    checkpoint = row;
  } else {
    const { runId, which } = body.checkpoint;
    const trained = await prisma.run.findUnique({ where: { id: runId } });
    if (!trained) throw new RunNotFoundError(`run ${runId}`);
    const rows = await prisma.checkpoint.findMany({ where: { runId }, orderBy: { step: 'desc' } });
    const spec = trainRunSpecSchema.safeParse(trained.config);
    const metric = spec.success ? (spec.data.checkpoint?.metric ?? 'val/accuracy') : '';
    const row = pick(rows, which, metric);
    if (!row) throw unprocessable(`run ${runId} has no checkpoint '${which}'`, 'body.checkpoint');
    checkpoint = row;
  }
  const trained = await prisma.run.findUnique({ where: { id: checkpoint.runId } });
  const spec = trainRunSpecSchema.safeParse(trained?.config);
  if (!trained || trained.kind !== 'train' || !spec.success)
    throw unprocessable(`run ${checkpoint.runId} is not a training run`, 'body.checkpoint');
  const info = dataInfoSchema.safeParse(trained.dataInfo);
  const dataInfo = info.success ? info.data : undefined;
  const numClasses = spec.data.model.numClasses;
  if (body.dataset.numClasses !== numClasses)
    throw unprocessable(
      `dataset.numClasses must be the model's (${numClasses})`,
      'body.dataset.numClasses',
    );
  if (body.dataset.format !== 'synthetic' && body.dataset.split !== 'test')
    throw unprocessable('an eval reads the test split (dataset.split: "test")');
  await checkDataset(data, body.dataset, numClasses, 'test', dataInfo?.classes);
  return {
    checkpoint: {
      runId: checkpoint.runId,
      checkpointId: checkpoint.id,
      step: checkpoint.step,
      location: checkpoint.location,
    },
    model: spec.data.model,
    seed: spec.data.train.seed,
    dataset: body.dataset,
    batchSize: body.batchSize,
    ...(dataInfo ? { dataInfo } : {}),
  };
}
