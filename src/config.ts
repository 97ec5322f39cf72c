/**
 * The only reader of process.env. Parsed once with zod; a bad value fails fast with a message
 * naming the variable. Every default lives here; `.env.example` lists every variable.
 */
import { z } from 'zod';
import { BACKEND_NAMES } from './model/backend-names.js';

const envSchema = z.object({
  /** PostgreSQL connection string. */
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/postgres'),
  /** Redis connection string (BullMQ). */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Port the API listens on. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Root of the data sets jobs may read. */
  DATA_ROOT: z.string().min(1).default('./data'),
  /**
   * Where checkpoints and exported models are kept, reachable by every worker and API replica:
   * `postgres` (chunked in the database of DATABASE_URL), `fs` (ARTIFACT_ROOT, a directory all
   * hosts mount) or `s3` (S3_* below).
   */
  ARTIFACT_STORE: z.enum(['postgres', 'fs', 's3']).default('postgres'),
  /** The `fs` store's shared directory (`runs/<id>/step-<n>/<file>`). */
  ARTIFACT_ROOT: z.string().min(1).default('./artifacts'),
  /**
   * This host's own working directory: the training child writes each checkpoint here before
   * the worker uploads it, and resume downloads land here. Never shared.
   */
  SCRATCH_ROOT: z.string().min(1).default('./scratch'),
  /** `s3` store: bucket (required for `s3`), key prefix, region and endpoint. */
  S3_BUCKET: z.string().min(1).optional(),
  S3_PREFIX: z.string().default(''),
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** An S3-compatible endpoint (MinIO, Ceph); unset for AWS. */
  S3_ENDPOINT: z.string().url().optional(),
  /** Path-style URLs (`endpoint/bucket/key`), which MinIO needs. */
  S3_FORCE_PATH_STYLE: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Static credentials; unset, the AWS SDK's default chain (instance role, profile) applies. */
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** Memory the API's model cache (predict) may hold, in bytes of weights. @defaultValue 512 MiB */
  MODEL_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(512 * 1024 * 1024),
  /** Largest image body `POST /v1/runs/:id/predict` accepts. @defaultValue 10 MiB */
  PREDICT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(10 * 1024 * 1024),
  /** Comma-separated API keys (used once authentication lands). */
  API_KEYS: z.string().default(''),
  /** BullMQ key prefix, so several deployments or test files can share one Redis. */
  QUEUE_PREFIX: z.string().min(1).default('gq'),
  /** Compute backend for training: `auto` tries tfjs-node-gpu, tfjs-node, wasm, cpu in order. */
  TRAIN_BACKEND: z.enum(['auto', ...BACKEND_NAMES]).default('auto'),
  /** Threads for the wasm backend; defaults to the machine's available parallelism. */
  TRAIN_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  /** Concurrent jobs per worker process. @defaultValue 1 */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /** Steps between `train/*` metric points. */
  METRICS_EVERY_STEPS: z.coerce.number().int().min(1).max(100_000).default(1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof envSchema>;

const checkedEnvSchema = envSchema.superRefine((env, ctx) => {
  if (env.ARTIFACT_STORE === 's3' && env.S3_BUCKET === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['S3_BUCKET'],
      message: 'required when ARTIFACT_STORE=s3',
    });
  }
});

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses an environment (process.env by default); throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = checkedEnvSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${problems}`);
  }
  return result.data;
}
