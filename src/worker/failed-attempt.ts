/**
 * How an attempt whose child failed or crashed ends, the same for training and eval jobs: bad
 * input (unrecoverable) or the last attempt fails the run with its cause; anything else puts it
 * back in the queue for BullMQ's retry. Always throws, so BullMQ records the failed attempt.
 */
import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../logger.js';
import type { Lease } from '../runs/lease.js';
import type { RunError } from '../runs/run-errors.js';
import type { RunLifecycle } from '../runs/run-lifecycle.js';
import { formatBytes } from '../model/memory-estimate.js';
import type { TrainingOutcome } from './training-process.js';

type Failure = Extract<TrainingOutcome, { outcome: 'failed' | 'crashed' }>;

/**
 * The run's error for a child that failed or crashed. A child memory killed is OutOfMemory,
 * unrecoverable: the same job on the same worker would need the same memory again.
 */
function errorOf(
  outcome: Failure,
  attempt: number,
  kind: { crashName: string; noun: string },
  memoryEstimateBytes: number,
): RunError {
  if (outcome.outcome === 'failed') return { ...outcome.error, attempt };
  const { memory } = outcome;
  if (memory) {
    const by =
      memory.cause === 'limit'
        ? `went past its memory limit of ${formatBytes(memory.limitBytes)} (WORKER_MEMORY_BYTES over the worker's slots) and was stopped`
        : `was killed by the kernel's OOM killer (its limit here: ${formatBytes(memory.limitBytes)})`;
    return {
      name: 'OutOfMemory',
      message:
        `the ${kind.noun} process ${by}; it reached ${formatBytes(memory.peakBytes)}, and the job ` +
        `was estimated to need ${formatBytes(memoryEstimateBytes)}: use a smaller batch, input ` +
        'or width, or a worker with more memory',
      unrecoverable: true,
      attempt,
    };
  }
  return {
    name: kind.crashName,
    message: `${kind.noun} process exited (code ${outcome.code}, signal ${outcome.signal})`,
    unrecoverable: false,
    attempt,
  };
}

export async function endFailedAttempt(args: {
  outcome: Failure;
  attempt: number;
  maxAttempts: number;
  /** Names the crash error (`TrainingProcessCrashed`) and the messages (`training failed`). */
  kind: { crashName: string; noun: 'training' | 'evaluation' };
  /** What the job was expected to need, for an OutOfMemory's message. */
  memoryEstimateBytes: number;
  lifecycle: RunLifecycle;
  lease: Lease;
  /** Queues the status write after every write before it and waits for all of them. */
  finish(what: string, op: () => Promise<unknown>): Promise<void>;
  log: Logger;
}): Promise<never> {
  const { outcome, attempt, kind, lifecycle, lease, log } = args;
  const error = errorOf(outcome, attempt, kind, args.memoryEstimateBytes);
  if (error.unrecoverable || attempt >= args.maxAttempts) {
    await args.finish('failure', () => lifecycle.fail(lease, error));
    log.error({ error }, `${kind.noun} failed`);
    if (error.unrecoverable) throw new UnrecoverableError(error.message);
  } else {
    await args.finish('retry', () => lifecycle.requeue(lease, error));
    log.warn({ error }, `${kind.noun} failed; will retry`);
  }
  throw new Error(error.message);
}
