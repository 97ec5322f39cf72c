/**
 * Eval jobs as the attempt runner runs them: the checkpoint the run names comes down from the
 * artifact store into this run's scratch directory (checked file by file), and a child scores it
 * on the data set's test split; a checkpoint that cannot be had fails the run for good.
 */
import { UnrecoverableError } from 'bullmq';
import { evalJobSchema, type EvalJob } from '../queue/job-payloads.js';
import type { RunError } from '../runs/run-errors.js';
import type { EvalResult } from '../spec/run-results.js';
import type { AttemptDeps, AttemptKind, ChildPlan } from './attempt-runner.js';
import { dataLimitsOf } from '../data/data-limits.js';
import { estimateEvalMemory } from '../model/memory-estimate.js';

export function evalAttempt(deps: AttemptDeps): AttemptKind<EvalJob> {
  const { checkpoints, lifecycle } = deps;
  return {
    noun: 'evaluation',
    crashName: 'EvalProcessCrashed',
    payload: evalJobSchema,
    summary: (result) => {
      const { top1, count } = result as EvalResult;
      return { top1, count };
    },
    async prepare(a, job): Promise<ChildPlan> {
      const { location } = job.spec.checkpoint;
      const fetched = await checkpoints.fetchForResume(a.runId, [location]);
      const dir = fetched.dirs[0];
      if (!dir) {
        const reason = fetched.unusable[0]?.reason ?? 'not found in the artifact store';
        const error: RunError = {
          name: 'CheckpointUnusable',
          message: `checkpoint ${location}: ${reason}`,
          unrecoverable: true,
          attempt: a.attempt,
        };
        await a.finish('failure', () => lifecycle.fail(a.lease, error));
        throw new UnrecoverableError(error.message);
      }
      return {
        start: {
          type: 'start-eval',
          job,
          checkpointDir: dir,
          backend: deps.config.TRAIN_BACKEND,
          ...(a.slot.threads !== undefined ? { threads: a.slot.threads } : {}),
          dataRoot: deps.config.DATA_ROOT,
          dataLimits: dataLimitsOf(deps.config),
          dataThreads: deps.config.DATA_THREADS,
        },
        memoryEstimateBytes: estimateEvalMemory(job.spec).total,
        cleanup: () =>
          checkpoints
            .cleanup(a.runId, undefined)
            .catch((error: unknown) =>
              a.log.warn({ err: error }, 'could not remove scratch files'),
            ),
      };
    },
  };
}
