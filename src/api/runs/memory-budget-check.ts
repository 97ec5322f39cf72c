/**
 * A submission's memory against what a worker can give one job: the job's estimated peak
 * (src/model/memory-estimate.ts) must fit the largest per-job share a live worker announced
 * (WORKER_MEMORY_BYTES over its slots, in its row's `devices.jobMemoryBytes`), or, while no
 * worker is live, JOB_MEMORY_CAP_BYTES. A job that fits nowhere is refused with 422 naming both
 * figures, instead of being run until the kernel kills its child.
 */
import type { Config } from '../../config.js';
import type { PrismaClient } from '../../db/index.js';
import {
  estimateEvalMemory,
  estimateTrainingMemory,
  formatBytes,
  type MemoryEstimate,
} from '../../model/memory-estimate.js';
import { aliveSince } from '../../queue/worker-liveness.js';
import { UnusableInputError } from '../../runs/run-errors.js';
import type { EvalRunSpec } from '../../spec/eval-run-spec.js';
import type { TrainRunSpecInput } from '../../spec/train-run-spec.js';

export type MemoryBudgetConfig = Pick<Config, 'JOB_MEMORY_CAP_BYTES' | 'DATA_PREFETCH_BATCHES'>;

/** The memory one job may use, and where that figure comes from. */
async function jobMemoryBudget(
  prisma: PrismaClient,
  config: MemoryBudgetConfig,
): Promise<{ bytes: number; source: string }> {
  const workers = await prisma.worker.findMany({
    where: { lastSeenAt: { gte: aliveSince() } },
    select: { devices: true },
  });
  const shares = workers
    .map((w) => (w.devices as { jobMemoryBytes?: unknown } | null)?.jobMemoryBytes)
    .filter((bytes): bytes is number => typeof bytes === 'number' && bytes > 0);
  if (shares.length === 0)
    return {
      bytes: config.JOB_MEMORY_CAP_BYTES,
      source: 'the cap while no worker is registered (JOB_MEMORY_CAP_BYTES)',
    };
  return {
    bytes: Math.max(...shares),
    source: "the largest live worker's share per job (WORKER_MEMORY_BYTES over its slots)",
  };
}

function parts(estimate: MemoryEstimate): string {
  return [
    `parameters ${formatBytes(estimate.parameters)}`,
    `activations ${formatBytes(estimate.activations)}`,
    `data ${formatBytes(estimate.data)}`,
    `runtime ${formatBytes(estimate.runtime)}`,
  ].join(', ');
}

/** Throws a 422 UnusableInputError when the job's estimate exceeds every worker's share. */
export async function checkMemoryBudget(
  prisma: PrismaClient,
  config: MemoryBudgetConfig,
  job: { kind: 'train'; spec: TrainRunSpecInput } | { kind: 'eval'; spec: EvalRunSpec },
): Promise<void> {
  const estimate =
    job.kind === 'train'
      ? estimateTrainingMemory({ ...job.spec, prefetchBatches: config.DATA_PREFETCH_BATCHES })
      : estimateEvalMemory(job.spec);
  const budget = await jobMemoryBudget(prisma, config);
  if (estimate.total <= budget.bytes) return;
  const batch = job.kind === 'train' ? 'train.batchSize' : 'batchSize';
  throw new UnusableInputError(
    `body.${batch}`,
    `the job is estimated to need ${formatBytes(estimate.total)} of memory; ` +
      `a job may use ${formatBytes(budget.bytes)}`,
    {
      detail:
        `the job is estimated to need ${formatBytes(estimate.total)} of memory ` +
        `(${parts(estimate)}), more than ${formatBytes(budget.bytes)}, ${budget.source}; ` +
        `use a smaller ${batch}, model.inputSize or model.width`,
    },
  );
}
