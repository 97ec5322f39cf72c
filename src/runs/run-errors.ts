/**
 * What can go wrong with a run, in the run's own words. The services throw these; the API's
 * error middleware (src/api/errors.ts) decides which HTTP status each one is.
 */

/** The run (or the checkpoint, the run it names) does not exist. */
export class RunNotFoundError extends Error {
  override name = 'RunNotFoundError';
  constructor(what: string) {
    super(`${what} does not exist`);
  }
}

/** The run is not in a status that allows the change (finished, not failed, not external). */
export class RunConflictError extends Error {
  override name = 'RunConflictError';
}

/** The queue (Redis) could not be reached; nothing was changed, the caller may try again. */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}

/** The checkpoint's stored files cannot be loaded (missing, corrupt, or not this network's). */
export class CheckpointUnusableError extends Error {
  override name = 'CheckpointUnusableError';
}

/** The run's trained model cannot be written as a TensorFlow.js Layers model archive. */
export class ModelNotExportableError extends Error {
  override name = 'ModelNotExportableError';
}

/**
 * Part of a request cannot be used as asked: `field` says which part (`body.dataset`,
 * `query.cursor`), `message` what is wrong with it.
 */
export class UnusableInputError extends Error {
  override name = 'UnusableInputError';
  /** True when the input is malformed (a 400); false when well formed but unusable (a 422). */
  readonly malformed: boolean;
  /** The whole story for the caller; the message alone by default. */
  readonly detail: string;
  constructor(
    readonly field: string,
    message: string,
    options: { malformed?: boolean; detail?: string } = {},
  ) {
    super(message);
    this.malformed = options.malformed ?? false;
    this.detail = options.detail ?? message;
  }
}

/** What an attempt, the reconciler or an external trainer records on a run that ends badly. */
export interface RunError {
  name: string;
  message: string;
  attempt: number;
  unrecoverable: boolean;
}

/**
 * The run's model cannot be served now (every model thread is busy and the queue is full, or
 * the thread serving it stopped); the caller may try again after `retryAfterSeconds`.
 */
export class ModelUnavailableError extends Error {
  override name = 'ModelUnavailableError';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
