/**
 * Submitting a training or eval run: the submission checks (data set, an eval's checkpoint),
 * then the run lifecycle writes the row and enqueues its job (job id = run id). With an
 * idempotency key, a repeated request returns the first run instead of creating another.
 */
import { dataLimitsOf } from '../../data/data-limits.js';
import type { Prisma, PrismaClient } from '../../db/index.js';
import type { Config } from '../../config.js';
import type { RunLifecycle } from '../../runs/run-lifecycle.js';
import { idempotentCreate, type Submitted } from './idempotent-create.js';
import { checkDataset, resolveEvalSpec, type DataSettings } from './run-submission-checks.js';
import { checkMemoryBudget, type MemoryBudgetConfig } from './memory-budget-check.js';
import type { CreateExternalRunBody, CreateRunBody } from './runs.schemas.js';

/** Runs that go through the queue (all but external ones). */
export type QueuedRunBody = Exclude<CreateRunBody, CreateExternalRunBody>;

export interface RunSubmissionDeps {
  prisma: PrismaClient;
  lifecycle: RunLifecycle;
  /** DATA_ROOT: submissions' data sets are checked below it, within the data limits; the job memory budget. */
  config: Pick<Config, 'DATA_ROOT' | 'DATA_MAX_BYTES' | 'DATA_MAX_IMAGES'> & MemoryBudgetConfig;
}

export function createRunSubmission({ prisma, lifecycle, config }: RunSubmissionDeps) {
  const data: DataSettings = { root: config.DATA_ROOT, limits: dataLimitsOf(config) };
  /** The spec stored on the run (and carried by its job), after the submission checks. */
  async function specOf(body: QueuedRunBody): Promise<Record<string, unknown>> {
    if (body.kind === 'train') {
      const spec = {
        model: body.model,
        dataset: body.dataset,
        train: body.train,
        ...(body.checkpoint ? { checkpoint: body.checkpoint } : {}),
      };
      await checkDataset(data, spec.dataset, spec.model.numClasses, 'train');
      await checkMemoryBudget(prisma, config, { kind: 'train', spec });
      return spec;
    }
    const spec = await resolveEvalSpec(prisma, data, body);
    await checkMemoryBudget(prisma, config, { kind: 'eval', spec });
    return spec;
  }

  return {
    /** A training or eval run, queued; a replay of one still queued enqueues it again. */
    async submitQueuedRun(body: QueuedRunBody, idempotencyKey?: string): Promise<Submitted> {
      const submitted = await idempotentCreate(prisma, idempotencyKey, body, async (hash) =>
        lifecycle.queue({
          kind: body.kind,
          name: body.name ?? null,
          priority: body.priority,
          config: (await specOf(body)) as Prisma.InputJsonValue,
          idempotencyKey: idempotencyKey ?? null,
          idempotencyHash: hash,
        }),
      );
      if (submitted.replayed) await lifecycle.ensureEnqueued(submitted.run);
      return submitted;
    },
  };
}
