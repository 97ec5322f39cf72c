/**
 * Training jobs as the attempt runner runs them: the child resumes from the run's newest usable
 * checkpoint (downloaded into this host's scratch directory), and what only a training child
 * reports — the data set it measured, where it resumed, the checkpoints it saved — is written
 * here: each checkpoint is uploaded while training goes on, recorded, then retention applied.
 */
import { trainJobSchema, type TrainJob } from '../queue/job-payloads.js';
import type { AttemptDeps, AttemptKind, Attempt, ChildPlan } from './attempt-runner.js';
import { SHUTDOWN_ONLY_RETENTION } from '../checkpoints/checkpoint-retention.js';
import type { CheckpointSync } from '../checkpoints/checkpoint-sync.js';
import type { ChildMessage } from './ipc.js';
import { dataLimitsOf } from '../data/data-limits.js';
import { estimateTrainingMemory } from '../model/memory-estimate.js';

type Resume = Awaited<ReturnType<CheckpointSync['fetchForResume']>>;

/** The newest usable checkpoints; a fetch that fails requeues the run for BullMQ's retry. */
async function fetchResume(deps: AttemptDeps, a: Attempt): Promise<Resume> {
  const { store, checkpoints, lifecycle } = deps;
  try {
    return await checkpoints.fetchForResume(a.runId, await store.checkpointLocations(a.runId));
  } catch (error) {
    // The store (or Postgres) is unreachable: a transient fault. The run goes back to
    // queued with the cause, and BullMQ retries the job after its backoff.
    const cause = error instanceof Error ? error : new Error(String(error));
    a.log.warn({ err: cause }, 'could not fetch the checkpoint to resume from; will retry');
    const runError = { name: cause.name, message: cause.message, unrecoverable: false };
    await lifecycle.requeue(a.lease, { ...runError, attempt: a.attempt }).catch(() => undefined);
    throw cause;
  }
}

/** What only a training child sends; `uploaded`: checkpoint locations by step, not recorded yet. */
function onTrainingMessage(
  deps: AttemptDeps,
  a: Attempt,
  job: TrainJob,
  resume: Resume,
  uploaded: Map<number, string>,
  message: ChildMessage,
) {
  const { store, checkpoints } = deps;
  const { writer, lease, log } = a;
  switch (message.type) {
    case 'data-info':
      writer.push('data info', () => store.setDataInfo(lease, message.info));
      break;
    case 'resumed':
      log.info({ step: message.step, location: message.location }, 'resuming from checkpoint');
      writer.push('resume', () => store.markResumed(lease, message.step));
      break;
    case 'checkpoint-rejected':
      log.warn({ location: message.location, reason: message.reason }, 'checkpoint not usable');
      writer.push('rejected checkpoint', async () => {
        const location = resume.locationOf(message.location);
        if (location !== undefined) await store.deleteCheckpoint(lease, location);
      });
      break;
    case 'fresh-start':
      log.warn('no usable checkpoint; training starts over');
      writer.push('fresh start', () => store.markResumed(lease, 0));
      break;
    case 'checkpoint':
      log.info({ step: message.step, location: message.location }, 'checkpoint saved');
      // Uploaded here, not in the child: training goes on while the bytes travel. Upload and
      // row are two writes, each retried alone: the upload removes the local copy, so a row
      // that failed (Postgres away) must not send the upload again.
      writer.push('checkpoint upload', async () => {
        uploaded.set(message.step, await checkpoints.upload(a.runId, message));
      });
      writer.push('checkpoint', async () => {
        const location = uploaded.get(message.step);
        if (location === undefined) return;
        uploaded.delete(message.step);
        await store.recordCheckpoint(lease, { ...message, location });
        const retention = job.spec.checkpoint ?? SHUTDOWN_ONLY_RETENTION;
        const deleted = await store.applyRetention(lease, retention);
        if (deleted.length > 0) log.debug({ deleted }, 'old checkpoints removed');
      });
      break;
    default:
      break;
  }
}

export function trainAttempt(deps: AttemptDeps): AttemptKind<TrainJob> {
  const { store, checkpoints } = deps;
  return {
    noun: 'training',
    crashName: 'TrainingProcessCrashed',
    payload: trainJobSchema,
    summary: (result) => ({ result }),
    async prepare(a, job): Promise<ChildPlan> {
      const resume = await fetchResume(deps, a);
      for (const { location, reason } of resume.unusable) {
        a.log.warn({ location, reason }, 'checkpoint not usable');
        a.writer.push('unusable checkpoint', () => store.deleteCheckpoint(a.lease, location));
      }
      const dataInfo = await store.dataInfo(a.runId);
      const uploaded = new Map<number, string>();
      return {
        start: {
          type: 'start',
          job,
          artifactDir: checkpoints.writeDir(a.runId),
          backend: deps.config.TRAIN_BACKEND,
          ...(a.slot.threads !== undefined ? { threads: a.slot.threads } : {}),
          metricsEverySteps: deps.config.METRICS_EVERY_STEPS,
          resumeFrom: resume.dirs,
          dataRoot: deps.config.DATA_ROOT,
          dataLimits: dataLimitsOf(deps.config),
          dataThreads: deps.config.DATA_THREADS,
          prefetchBatches: deps.config.DATA_PREFETCH_BATCHES,
          ...(dataInfo ? { dataInfo } : {}),
        },
        memoryEstimateBytes: estimateTrainingMemory({
          ...job.spec,
          prefetchBatches: deps.config.DATA_PREFETCH_BATCHES,
        }).total,
        onMessage: (message) => onTrainingMessage(deps, a, job, resume, uploaded, message),
        // This host's scratch files go, and stored checkpoints that never got their row (a
        // worker died between upload and row) — the latter only while this attempt still owns
        // the run, so it cannot remove what a newer attempt has just uploaded.
        cleanup: (leaseLost) =>
          store
            .checkpointLocations(a.runId)
            .then((recorded) => checkpoints.cleanup(a.runId, leaseLost ? undefined : recorded))
            .catch((error: unknown) =>
              a.log.warn({ err: error }, 'could not clean up checkpoint files'),
            ),
      };
    },
  };
}
