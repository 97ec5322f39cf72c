import { z } from 'zod';

/** `?checkpoint=best|latest|step:N` (default best: the best by the run's metric, else latest). */
export const checkpointSelector = z
  .union([
    z.literal('best'),
    z.literal('latest'),
    z
      .string()
      .regex(/^step:\d{1,10}$/, 'best, latest or step:N')
      .transform((s) => Number(s.slice('step:'.length))),
  ])
  .default('best');

export type CheckpointSelector = z.output<typeof checkpointSelector>;

export const modelQuery = z.object({ checkpoint: checkpointSelector }).strict();
