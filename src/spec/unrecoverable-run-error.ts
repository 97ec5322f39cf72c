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

/**
 * Training diverged: the loss (or a weight) is no longer a finite number, and every later step
 * and checkpoint would carry the NaN on. The config, not the machine, is at fault (a learning
 * rate too high, no warm-up), so a retry would only diverge again.
 */
export class DivergedError extends UnrecoverableRunError {
  override name = 'Diverged';
  constructor(
    readonly step: number,
    what: string,
    readonly value: number,
  ) {
    super(
      `training diverged at step ${step}: ${what} is ${value}; ` +
        'lower the learning rate or add a warm-up (train.lrSchedule)',
    );
  }
}
