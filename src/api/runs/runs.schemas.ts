/** Request schemas of the /v1/runs resource (strict: unknown fields are refused). */
import { z } from 'zod';
import { checkTrainRunSpec, trainRunSpecFields } from '../../jobs.js';

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const RUN_KINDS = ['train', 'eval', 'external'] as const;

/** Scheduling priority 0..100, higher runs sooner; equal priorities run in submission order. */
export const DEFAULT_PRIORITY = 50;

export const createTrainRunBody = z
  .object({
    kind: z.literal('train'),
    name: z.string().trim().min(1).max(200).optional(),
    priority: z.number().int().min(0).max(100).default(DEFAULT_PRIORITY),
    ...trainRunSpecFields,
  })
  .strict()
  .superRefine(checkTrainRunSpec);
export type CreateTrainRunBody = z.output<typeof createTrainRunBody>;

export const idempotencyKeyHeader = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

export const listRunsQuery = z
  .object({
    status: z.enum(RUN_STATUSES).optional(),
    kind: z.enum(RUN_KINDS).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(200).optional(),
  })
  .strict();

export const runIdParam = z.string().uuid('must be a run id (UUID)');

export const metricsQuery = z
  .object({
    /** Comma-separated metric names; all of the run's when absent. */
    names: z
      .string()
      .max(2000)
      .transform((s) =>
        s
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n.length > 0),
      )
      .pipe(z.array(z.string().max(100)).min(1).max(50))
      .optional(),
    maxPoints: z.coerce.number().int().min(1).max(10_000).default(1000),
  })
  .strict();

export const deadLetterQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(200).optional(),
  })
  .strict();
