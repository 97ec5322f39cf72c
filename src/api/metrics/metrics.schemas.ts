/**
 * Request and response schemas of metric ingest and queries: `POST /v1/runs/:id/metrics`,
 * `GET /v1/runs/:id/metrics`, `GET /v1/metrics` (several runs, for the compare view).
 */
import { z } from 'zod';
import { MAX_STEP } from '../../db/metric-rollups.js';
import { metricNameSchema } from '../../spec/metric-name.js';
import { runIdParam } from '../runs/runs.schemas.js';

/** Points one ingest request may carry. */
export const MAX_POINTS_PER_REQUEST = 10_000;

const stepSchema = z.number().int().min(0).max(MAX_STEP);

export const ingestMetricsBody = z
  .object({
    points: z
      .array(
        z
          .object({
            // Checked against metricNameSchema once per distinct name (below): a batch of
            // 10,000 points usually carries a handful of names.
            name: z.string().min(1).max(100),
            step: stepSchema,
            value: z.number(),
            /** When the value was measured; the time of the request when absent. */
            time: z.iso.datetime({ offset: true }).optional(),
          })
          .strict(),
      )
      .min(1)
      .max(MAX_POINTS_PER_REQUEST)
      .superRefine((points, ctx) => {
        const verdicts = new Map<string, string | null>();
        points.forEach((p, i) => {
          let problem = verdicts.get(p.name);
          if (problem === undefined) {
            const parsed = metricNameSchema.safeParse(p.name);
            problem = parsed.success ? null : (parsed.error.issues[0]?.message ?? 'invalid');
            verdicts.set(p.name, problem);
          }
          if (problem !== null)
            ctx.addIssue({ code: 'custom', path: [i, 'name'], message: problem });
        });
      }),
  })
  .strict();
export type IngestMetricsBody = z.output<typeof ingestMetricsBody>;

export const ingestMetricsResponse = z.object({
  /** Points in the request. */
  received: z.number().int(),
  /** Points stored by this request; the rest were stored before (same name and step). */
  inserted: z.number().int(),
});

const commaList = <T extends z.ZodType<string, string>>(item: T, max: number) =>
  z
    .string()
    .max(4000)
    .transform((s) =>
      s
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n.length > 0),
    )
    .pipe(z.array(item).min(1).max(max));

const seriesQueryFields = {
  names: commaList(metricNameSchema, 50)
    .optional()
    .describe(
      "Comma-separated metric names (`train/loss,val/accuracy`); all of the run's when absent",
    ),
  fromStep: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_STEP)
    .optional()
    .describe('First step, inclusive'),
  toStep: z.coerce.number().int().min(0).max(MAX_STEP).optional().describe('Last step, inclusive'),
  maxPoints: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(1000)
    .describe(
      'Most points per series. A range holding more is answered with at most this many buckets, ' +
        'each with min, max, count and its last value as `value`; otherwise the exact points',
    ),
};

export const metricsQuery = z.object(seriesQueryFields).strict();
export type MetricsQuery = z.output<typeof metricsQuery>;

export const compareMetricsQuery = z
  .object({
    runIds: commaList(runIdParam, 20).describe('Comma-separated run ids'),
    ...seriesQueryFields,
  })
  .strict();

export const seriesSchema = z.object({
  name: z.string(),
  points: z.array(
    z.object({
      step: z.number().int(),
      /** The stored value; for a bucket, its last value (at `step`, its newest step). */
      value: z.number(),
      min: z.number().optional(),
      max: z.number().optional(),
      count: z.number().int().optional(),
    }),
  ),
});

export const metricsResponse = z.object({
  runId: z.uuid(),
  series: z.array(seriesSchema),
});
export type MetricsResponse = z.output<typeof metricsResponse>;

export const compareMetricsResponse = z.object({ runs: z.array(metricsResponse) });
export type CompareMetricsResponse = z.output<typeof compareMetricsResponse>;
