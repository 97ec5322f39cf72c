/**
 * Putting a run's job (training, or evaluation: job name `eval`) on the queue: the one place that knows the job's options, used
 * by the API (submit, retry) and by the worker's reconciler (a job that vanished).
 */
import type { Queue } from 'bullmq';
import type { Run } from '../db/index.js';
import { evalJobSchema, trainJobSchema, type EvalJob, type TrainJob } from './job-payloads.js';
import { JOB_NAMES } from './training-queue.js';

export interface RetryPolicy {
  /** Tries for transient faults before the run fails. */
  attempts: number;
  /** First retry delay; doubles with each attempt. */
  backoffMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 3, backoffMs: 5000 };

/** BullMQ runs lower numbers first and un-prioritised jobs before all others, so every job gets one. */
function bullmqPriority(priority: number): number {
  return 101 - priority;
}

/** Adds the run's job, `train` or `eval` by the run's kind. */
export async function enqueueRun(
  queue: Queue,
  run: Pick<Run, 'id' | 'kind' | 'config' | 'priority'>,
  retry: RetryPolicy = DEFAULT_RETRY_POLICY,
): Promise<void> {
  if (run.kind === 'eval') {
    const payload: EvalJob = evalJobSchema.parse({ runId: run.id, spec: run.config });
    await queue.add(JOB_NAMES.eval, payload, jobOptions(run, retry));
  } else await enqueueTrainRun(queue, run, retry);
}

function jobOptions(run: Pick<Run, 'id' | 'priority'>, retry: RetryPolicy) {
  return {
    jobId: run.id,
    priority: bullmqPriority(run.priority),
    attempts: retry.attempts,
    backoff: { type: 'exponential' as const, delay: retry.backoffMs },
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

/** Adds the run's training job (job id = run id); BullMQ ignores a second add with the same id. */
export async function enqueueTrainRun(
  queue: Queue,
  run: Pick<Run, 'id' | 'config' | 'priority'>,
  retry: RetryPolicy = DEFAULT_RETRY_POLICY,
): Promise<void> {
  const payload: TrainJob = trainJobSchema.parse({ runId: run.id, spec: run.config });
  await queue.add(JOB_NAMES.train, payload, jobOptions(run, retry));
}
