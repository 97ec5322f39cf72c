/**
 * The one mark of an error that retrying cannot mend: bad input (a data set that is not what
 * its format says, a training split smaller than a batch, a backend that cannot load, a
 * checkpoint an eval cannot read). Whatever throws it in the training child, the child reports
 * the failure as unrecoverable and the worker fails the run at once, handing BullMQ its own
 * UnrecoverableError so that no attempt is spent on it again.
 *
 * Its name stays `Error` unless a subclass names itself, so a run's recorded error reads as it
 * did before the mark existed.
 */
export class UnrecoverableRunError extends Error {}

/** Whether `error` carries the mark (zod's parse errors too: a payload that cannot parse). */
export function isUnrecoverable(error: unknown): boolean {
  return (
    error instanceof UnrecoverableRunError || (error instanceof Error && error.name === 'ZodError')
  );
}
