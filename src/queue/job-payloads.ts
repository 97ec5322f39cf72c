/**
 * The payloads the queue carries: one job per run, job id = run id. The API builds them with
 * these schemas and the worker parses them again before it trusts them.
 */
import { z } from 'zod';
import { evalRunSpecSchema } from '../spec/eval-run-spec.js';
import { trainRunSpecSchema } from '../spec/train-run-spec.js';

/** Payload of a training job. The job id is the run id. */
export const trainJobSchema = z.object({
  runId: z.string().uuid(),
  spec: trainRunSpecSchema,
});
export type TrainJob = z.infer<typeof trainJobSchema>;

/** Payload of an eval job (job name `eval`). The job id is the run id. */
export const evalJobSchema = z.object({
  runId: z.string().uuid(),
  spec: evalRunSpecSchema,
});
export type EvalJob = z.infer<typeof evalJobSchema>;
