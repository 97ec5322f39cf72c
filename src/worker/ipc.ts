/**
 * Messages between a worker process (parent: owns Redis and Postgres) and the child process
 * that trains one job (compute only). Sent over Node's IPC channel with `serialization:
 * 'advanced'` (structured clone), so plain objects, numbers and strings travel as they are.
 */
import type { DataLimits } from '../data/data-limits.js';
import type { DataInfo } from '../spec/data-info.js';
import type { EvalJob, TrainJob } from '../queue/job-payloads.js';
import type { EvalResult, TrainResult } from '../spec/run-results.js';
import type { BackendPreference, LoadedBackend } from '../model/backend.js';
import type { SavedCheckpoint } from '../checkpoints/checkpoint-manifest.js';

/** Parent -> child: train this job. */
export interface StartMessage {
  type: 'start';
  job: TrainJob;
  /**
   * Local directory for this run's checkpoints (`SCRATCH_ROOT/runs/<id>`); the parent uploads
   * each to the artifact store.
   */
  artifactDir: string;
  backend: BackendPreference;
  threads?: number;
  /** Steps between train/* metric points. */
  metricsEverySteps: number;
  /**
   * Local checkpoint directories (downloaded by the parent from the artifact store), newest
   * first: resume from the first valid one.
   */
  resumeFrom?: string[];
  /** DATA_ROOT: file data sets are read below it only (required for them). */
  dataRoot?: string;
  /** DATA_MAX_BYTES and DATA_MAX_IMAGES: how much of a file data set may be read (required for them). */
  dataLimits?: DataLimits;
  /** Worker threads decoding and augmenting images (DATA_THREADS). @defaultValue 1 */
  dataThreads?: number;
  /** Training batches requested ahead of use (DATA_PREFETCH_BATCHES). @defaultValue 2 */
  prefetchBatches?: number;
  /** What the run recorded about its data set when it first started. */
  dataInfo?: DataInfo;
}

/** Parent -> child: evaluate this job's checkpoint (downloaded to `checkpointDir`). */
export interface EvalStartMessage {
  type: 'start-eval';
  job: EvalJob;
  checkpointDir: string;
  backend: BackendPreference;
  threads?: number;
  dataRoot: string;
  /** DATA_MAX_BYTES and DATA_MAX_IMAGES. */
  dataLimits: DataLimits;
  dataThreads: number;
}

/** Parent -> child: stop after the current step (cancel, shutdown). */
export interface StopMessage {
  type: 'stop';
  reason: 'cancel' | 'shutdown';
}

export type ParentMessage = StartMessage | EvalStartMessage | StopMessage;

export interface MetricPointMessage {
  name: string;
  step: number;
  value: number;
  /** Wall time, ms since the epoch. */
  time: number;
}

/** A checkpoint the child has written (and fsynced) to local disk; `location` is its directory. */
export interface CheckpointSaved extends SavedCheckpoint {
  step: number;
  epoch: number;
  metrics: Record<string, number>;
}

export type ChildMessage =
  | { type: 'backend'; backend: LoadedBackend }
  /** The data set's classes and normalisation, measured when the run first starts. */
  | { type: 'data-info'; info: DataInfo }
  | { type: 'progress'; step: number; totalSteps: number; epoch: number }
  /** Training continues from this checkpoint's step; metrics from `step` on will be rewritten. */
  | { type: 'resumed'; step: number; location: string }
  /** Checkpoints existed but none could be used: training starts over from step 0. */
  | { type: 'fresh-start' }
  /** A checkpoint that could not be used (torn, corrupt, mismatched). */
  | { type: 'checkpoint-rejected'; location: string; reason: string }
  | { type: 'metrics'; points: MetricPointMessage[] }
  | ({ type: 'checkpoint' } & CheckpointSaved)
  | { type: 'done'; result: TrainResult | EvalResult }
  | { type: 'stopped'; step: number; reason: StopMessage['reason'] }
  | {
      type: 'failed';
      error: {
        name: string;
        message: string;
        /** bad input: retrying cannot help */ unrecoverable: boolean;
      };
    };
