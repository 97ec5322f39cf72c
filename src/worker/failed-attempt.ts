/**
 * How an attempt whose child failed or crashed ends, the same for training and eval jobs: bad
 * input (unrecoverable) or the last attempt fails the run with its cause; anything else puts it
 * back in the queue for BullMQ's retry. Always throws, so BullMQ records the failed attempt.
 */
import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../logger.js';
import type { Lease, RunError, RunStore } from './run-store.js';
import type { TrainingOutcome } from './training-process.js';

type Failure = Extract<TrainingOutcome, { outcome: 'failed' | 'crashed' }>;

export async function endFailedAttempt(args: {
  outcome: Failure;
  attempt: number;
  maxAttempts: number;
  /** Names the crash error (`TrainingProcessCrashed`) and the messages (`training failed`). */
  kind: { crashName: string; noun: 'training' | 'evaluation' };
  store: RunStore;
  lease: Lease;
  /** Queues the status write after every write before it and waits for all of them. */
  finish(what: string, op: () => Promise<unknown>): Promise<void>;
  log: Logger;
}): Promise<never> {
  const { outcome, attempt, kind, store, lease, log } = args;
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
    await args.finish('failure', () => store.markFailed(lease, error));
    log.error({ error }, `${kind.noun} failed`);
    if (error.unrecoverable) throw new UnrecoverableError(error.message);
  } else {
    await args.finish('retry', () => store.markQueued(lease, error));
    log.warn({ error }, `${kind.noun} failed; will retry`);
  }
  throw new Error(error.message);
}
