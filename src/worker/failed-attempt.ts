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
import type { TrainingOutcome } from './training-process.js';

type Failure = Extract<TrainingOutcome, { outcome: 'failed' | 'crashed' }>;

export async function endFailedAttempt(args: {
  outcome: Failure;
  attempt: number;
  maxAttempts: number;
  /** Names the crash error (`TrainingProcessCrashed`) and the messages (`training failed`). */
  kind: { crashName: string; noun: 'training' | 'evaluation' };
  lifecycle: RunLifecycle;
  lease: Lease;
  /** Queues the status write after every write before it and waits for all of them. */
  finish(what: string, op: () => Promise<unknown>): Promise<void>;
  log: Logger;
}): Promise<never> {
  const { outcome, attempt, kind, lifecycle, lease, log } = args;
  const error: RunError =
    outcome.outcome === 'failed'
      ? { ...outcome.error, attempt }
      : {
          name: kind.crashName,
          message: `${kind.noun} process exited (code ${outcome.code}, signal ${outcome.signal})`,
          unrecoverable: false,
          attempt,
        };
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
