/**
 * The BullMQ processor for eval jobs (job name `eval`): claims the run, downloads the checkpoint
 * it names from the artifact store, evaluates it in a child process (as training does, so tfjs
 * never blocks this event loop) and records the `eval/*` metrics and the result.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { evalJobSchema } from '../queue/job-payloads.js';
import type { EvalResult } from '../spec/run-results.js';
import type { TrainJobDeps } from './process-train-job.js';
import { LeaseLostError } from '../runs/lease.js';
import type { RunError } from '../runs/run-errors.js';
import { endFailedAttempt } from './failed-attempt.js';
import { RunWriter } from './run-writer.js';
import { startTrainingProcess } from './training-process.js';

export type EvalJobOutcome = EvalResult | { skipped: true };

export function createEvalJobProcessor(deps: TrainJobDeps) {
  return async (job: Job, token?: string): Promise<EvalJobOutcome> => {
    const parsed = evalJobSchema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`invalid job payload: ${parsed.error.message}`);
    const { runId, spec } = parsed.data;
    const log = deps.logger.child({ runId, jobId: job.id });
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const { store, checkpoints, lifecycle } = deps;

    const slot = deps.slots.acquire();
    try {
      const lease = await lifecycle.claim(runId, {
        workerId: deps.workerId,
        attempt,
        device: slot.id,
      });
      if (!lease) return { skipped: true };
      log.info({ checkpoint: spec.checkpoint }, 'evaluation started');
      const finish = async (what: string, op: () => Promise<unknown>): Promise<void> => {
        writer.push(what, op);
        await writer.drain();
      };
      const writer = new RunWriter({
        log,
        writeMetrics: (points) => store.writeMetrics(lease, points),
        maxBufferedPoints: deps.config.METRICS_BUFFER_POINTS,
        giveUpAfterMs: deps.config.WRITE_RETRY_LIMIT_MS,
        onBackpressure: () => undefined,
        onFatal: (error) => log.error({ err: error }, 'cannot record this evaluation'),
      });

      // The checkpoint comes down into this run's scratch directory, checked file by file.
      const fetched = await checkpoints.fetchForResume(runId, [spec.checkpoint.location]);
      const dir = fetched.dirs[0];
      if (!dir) {
        const reason = fetched.unusable[0]?.reason ?? 'not found in the artifact store';
        const error: RunError = {
          name: 'CheckpointUnusable',
          message: `checkpoint ${spec.checkpoint.location}: ${reason}`,
          unrecoverable: true,
          attempt,
        };
        await finish('failure', () => lifecycle.fail(lease, error));
        throw new UnrecoverableError(error.message);
      }
      const child = startTrainingProcess(
        {
          type: 'start-eval',
          job: parsed.data,
          checkpointDir: dir,
          backend: deps.config.TRAIN_BACKEND,
          ...(slot.threads !== undefined ? { threads: slot.threads } : {}),
          dataRoot: deps.config.DATA_ROOT,
          dataThreads: deps.config.DATA_THREADS,
        },
        (message) => {
          if (message.type === 'metrics') writer.metrics(message.points);
          else if (message.type === 'backend')
            writer.push('backend', () =>
              store.setBackend(lease, deps.workerId, message.backend.name),
            );
          else if (message.type === 'progress') {
            const { step, totalSteps, epoch } = message;
            writer.push('progress', () => store.updateProgress(lease, { step, totalSteps, epoch }));
          }
        },
        { ...process.env, ...slot.env },
      );
      deps.running.set(runId, child);
      if (deps.isStopping()) child.stop('shutdown');
      const outcome = await child.finished.finally(() => deps.running.delete(runId));
      await checkpoints
        .cleanup(runId, undefined)
        .catch((error: unknown) => log.warn({ err: error }, 'could not remove scratch files'));
      try {
        await writer.drain();
        switch (outcome.outcome) {
          case 'done': {
            const result = outcome.result as EvalResult;
            await finish('success', () => lifecycle.succeed(lease, result));
            log.info({ top1: result.top1, count: result.count }, 'evaluation succeeded');
            return result;
          }
          case 'stopped':
            if (outcome.reason === 'cancel') {
              await finish('cancel', () => lifecycle.cancel(lease));
              return { skipped: true };
            }
            await finish('requeue', () => lifecycle.requeue(lease));
            await job.moveToDelayed(Date.now(), token);
            throw new DelayedError();
          case 'failed':
          case 'crashed':
            return endFailedAttempt({
              outcome,
              attempt,
              maxAttempts,
              kind: { crashName: 'EvalProcessCrashed', noun: 'evaluation' },
              lifecycle,
              lease,
              finish,
              log,
            });
        }
      } catch (error) {
        if (error instanceof LeaseLostError) return { skipped: true };
        throw error;
      }
    } finally {
      deps.slots.release(slot);
    }
  };
}
