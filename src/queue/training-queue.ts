/**
 * The one BullMQ queue and the names of the jobs it carries. Training and evaluation share the
 * queue so that evaluations wait in line with training for the same devices.
 */

/** BullMQ queue that carries training and evaluation jobs. */
export const TRAINING_QUEUE = 'training';

/** Job names: the worker picks the processor by name, the API adds by the run's kind. */
export const JOB_NAMES = { train: 'train', eval: 'eval' } as const;
export type JobName = (typeof JOB_NAMES)[keyof typeof JOB_NAMES];
