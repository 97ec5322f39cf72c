/**
 * Request and response schemas of the /v1/runs resource. Requests are strict (unknown fields are
 * refused) and bounded; responses describe what the handlers send, for the OpenAPI document and
 * the typed client.
 */
import { z } from 'zod';
import { RUN_KINDS, RUN_STATUSES } from '../../spec/run-status.js';
import { checkpointRefSchema } from '../../spec/eval-run-spec.js';
import { checkTrainRunSpec, trainRunSpecFields } from '../../spec/train-run-spec.js';
import { datasetSpecSchema } from '../../spec/dataset-spec.js';
import { evalResultSchema, trainResultSchema } from '../../spec/run-results.js';
import {
  checkRunConfig,
  RUN_CONFIG_MAX_ARRAY,
  RUN_CONFIG_MAX_BYTES,
  RUN_CONFIG_MAX_DEPTH,
} from './run-config-bounds.js';

export { RUN_KINDS, RUN_STATUSES } from '../../spec/run-status.js';

/**
 * Control characters (C0, DEL, C1) and the bidirectional overrides and isolates: in a name they
 * can rewrite the terminal of whoever lists the runs (`gq list`) or disguise one name as another.
 */
const NAME_FORBIDDEN = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;

/** A run's name, shown in lists and terminals: printable text of 1..200 characters. */
export const runNameSchema = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((name) => !NAME_FORBIDDEN.test(name), {
    message: 'must not hold control characters or bidirectional overrides',
  });

/** Scheduling priority 0..100, higher runs sooner; equal priorities run in submission order. */
export const DEFAULT_PRIORITY = 50;

export const createTrainRunBody = z
  .object({
    kind: z.literal('train'),
    name: runNameSchema.optional(),
    priority: z.number().int().min(0).max(100).default(DEFAULT_PRIORITY),
    ...trainRunSpecFields,
  })
  .strict()
  .superRefine(checkTrainRunSpec);
export type CreateTrainRunBody = z.output<typeof createTrainRunBody>;
export type CreateTrainRunInput = z.input<typeof createTrainRunBody>;

/** An evaluation of a training run's checkpoint on a data set's test split. */
export const createEvalRunBody = z
  .object({
    kind: z.literal('eval'),
    name: runNameSchema.optional(),
    priority: z.number().int().min(0).max(100).default(DEFAULT_PRIORITY),
    checkpoint: checkpointRefSchema,
    dataset: datasetSpecSchema,
    /** Images per forward pass. @defaultValue 32 */
    batchSize: z.number().int().min(1).max(4096).default(32),
  })
  .strict();
export type CreateEvalRunBody = z.output<typeof createEvalRunBody>;

/** A run trained elsewhere (a PyTorch script, a notebook) that logs its metrics here. */
export const createExternalRunBody = z
  .object({
    kind: z.literal('external'),
    name: runNameSchema,
    /** Anything the trainer wants kept with the run (hyperparameters, a git commit). */
    config: z
      .record(z.string(), z.unknown())
      .superRefine(checkRunConfig)
      .default({})
      .describe(
        `Free-form JSON kept with the run: at most ${RUN_CONFIG_MAX_BYTES} bytes, ` +
          `${RUN_CONFIG_MAX_DEPTH} levels deep, arrays of at most ${RUN_CONFIG_MAX_ARRAY} elements`,
      ),
  })
  .strict();
export type CreateExternalRunBody = z.output<typeof createExternalRunBody>;

export const createRunBody = z.discriminatedUnion('kind', [
  createTrainRunBody,
  createEvalRunBody,
  createExternalRunBody,
]);
export type CreateRunBody = z.output<typeof createRunBody>;

/** The end of an external run. */
export const finishRunBody = z
  .object({
    status: z.enum(['succeeded', 'failed', 'cancelled']),
    /** Why it failed, shown on the run. */
    error: z.string().max(2000).optional(),
  })
  .strict();
export type FinishRunBody = z.output<typeof finishRunBody>;

export const idempotencyKeyHeader = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** Headers POST /v1/runs reads (others pass: this object is not strict). */
export const submitRunHeaders = z.object({
  'idempotency-key': idempotencyKeyHeader
    .optional()
    .describe('The same key returns the same run instead of creating another'),
});

export const listRunsQuery = z
  .object({
    status: z.enum(RUN_STATUSES).optional(),
    kind: z.enum(RUN_KINDS).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20).describe('Runs per page'),
    cursor: z.string().min(1).max(200).optional().describe('`nextCursor` of the previous page'),
  })
  .strict();
/** The list query as a client builds it (coerce's input type is `unknown`; a number is meant). */
export type ListRunsQuery = Omit<z.input<typeof listRunsQuery>, 'limit'> & { limit?: number };

export const runIdParam = z.string().uuid('must be a run id (UUID)');

export const runIdParams = z.object({ id: runIdParam }).strict();

/** Cancel takes no options: no body, or an empty object. */
export const cancelRunBody = z.object({}).strict().optional();

// Responses

const isoDateTime = z.iso.datetime();

export const runResponse = z.object({
  id: z.uuid(),
  kind: z.enum(RUN_KINDS),
  status: z.enum(RUN_STATUSES),
  name: z.string().nullable(),
  priority: z.number().int(),
  /** The run's spec as stored, defaults filled in. */
  config: z.record(z.string(), z.unknown()),
  progress: z
    .object({ step: z.number().int(), totalSteps: z.number().int(), epoch: z.number().int() })
    .nullable(),
  attempts: z.number().int(),
  resumedFromStep: z.number().int().nullable(),
  backend: z.string().nullable(),
  /** The device slot of the latest attempt (`gpu:0`, `cpu:1`). */
  device: z.string().nullable(),
  workerId: z.string().nullable(),
  /** Last sign of life from the worker training the run. */
  heartbeatAt: isoDateTime.nullable(),
  error: z
    .object({
      name: z.string(),
      message: z.string(),
      attempt: z.number().int(),
      unrecoverable: z.boolean(),
    })
    .nullable(),
  /** A training run's summary, or an eval run's scores. */
  result: z.union([trainResultSchema, evalResultSchema]).nullable(),
  createdAt: isoDateTime,
  startedAt: isoDateTime.nullable(),
  finishedAt: isoDateTime.nullable(),
  /** The data set as the run saw it: classes (label order) and normalisation. */
  dataInfo: z.record(z.string(), z.unknown()).nullable(),
  /** The highest `val/accuracy` so far, null when none (GET /v1/runs and /v1/runs/:id). */
  bestValAccuracy: z.number().nullable().optional(),
  /** Newest point of each metric (GET /v1/runs/:id only). */
  latestMetrics: z
    .record(z.string(), z.object({ step: z.number().int(), value: z.number() }))
    .optional(),
});
export type RunResponse = z.output<typeof runResponse>;

/** A run in a list: without its `config` (read it with GET /v1/runs/:id). */
export const runListItem = runResponse.omit({ config: true });
export type RunListItem = z.output<typeof runListItem>;

export const runListResponse = z.object({
  items: z.array(runListItem),
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: z.string().nullable(),
});
export type RunListResponse = z.output<typeof runListResponse>;

export const checkpointsResponse = z.object({
  items: z.array(
    z.object({
      id: z.uuid(),
      step: z.number().int(),
      epoch: z.number().int(),
      bytes: z.number().int(),
      sha256: z.string(),
      metrics: z.record(z.string(), z.number()).nullable(),
      createdAt: isoDateTime,
    }),
  ),
});
export type CheckpointsResponse = z.output<typeof checkpointsResponse>;

export const deadLetterQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(200).optional(),
  })
  .strict();

/** Retry takes no options: no body, or an empty object. */
export const retryRunBody = z.object({}).strict().optional();

export const deadLetterResponse = z.object({
  items: z.array(
    runListItem.extend({
      /** The run's BullMQ job, while the queue keeps it (30 days after failing). */
      job: z
        .object({
          state: z.string(),
          attemptsMade: z.number().int(),
          failedReason: z.string().nullable(),
        })
        .nullable(),
    }),
  ),
  nextCursor: z.string().nullable(),
});
