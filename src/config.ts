/**
 * The only reader of process.env. Parsed once with zod; a bad value fails fast with a message
 * naming the variable. Every default lives here; `.env.example` lists every variable.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BACKEND_NAMES } from './model/backend-names.js';

/** A role name DATABASE_APP_ROLE accepts: a plain lower-case SQL identifier. */
export const APP_ROLE_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

const envSchema = z.object({
  /** PostgreSQL connection string. */
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/postgres'),
  /** Redis connection string (BullMQ). */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /**
   * `db:migrate` only: a role for the API and workers that reads and writes the tables and
   * nothing more. Given it (with DATABASE_APP_PASSWORD), migrate creates or updates that role
   * after the migrations; the API and workers then connect with it in their DATABASE_URL.
   */
  DATABASE_APP_ROLE: z
    .string()
    .regex(APP_ROLE_PATTERN, 'a lower-case SQL identifier (letters, digits, _)')
    .optional(),
  /** The password migrate sets on DATABASE_APP_ROLE. */
  DATABASE_APP_PASSWORD: z.string().min(1).optional(),
  /** Port the API listens on. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Root of the data sets jobs may read; `dataset.path` is relative to it and never leaves it. */
  DATA_ROOT: z.string().min(1).default('./data'),
  /**
   * Pixel bytes of one data set split a reader may hold in memory: an IDX images file's payload
   * as its header declares it (after gunzip), a CIFAR-10 split's records. Checked against the
   * header or file sizes before anything is read or inflated, at submission (422) and in the
   * worker (the run fails for good). The training child and each DATA_THREADS thread hold a
   * copy. @defaultValue 1 GiB
   */
  DATA_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(2 ** 32 - 1)
    .default(1024 ** 3),
  /**
   * Images one data set split may hold (IDX, CIFAR-10, image folders); also bounds the labels
   * the API streams to count an IDX set's classes. @defaultValue 10,000,000
   */
  DATA_MAX_IMAGES: z.coerce.number().int().min(1).max(1_000_000_000).default(10_000_000),
  /** Worker threads per training job that decode, resize and augment images. @defaultValue 1 */
  DATA_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  /** Training batches the input pipeline prepares ahead of the step that needs them. @defaultValue 4 */
  DATA_PREFETCH_BATCHES: z.coerce.number().int().min(1).max(256).default(4),
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
  /**
   * Worker threads of the API that decode predict images and run models (predict and export),
   * off the event loop. Each keeps its own models, within MODEL_CACHE_BYTES / PREDICT_THREADS.
   * @defaultValue 1
   */
  PREDICT_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  /**
   * Predict and export requests that may wait for a busy model thread; past it they get 503
   * with Retry-After. @defaultValue 8
   */
  PREDICT_QUEUE_LENGTH: z.coerce.number().int().min(0).max(10_000).default(8),
  /**
   * Comma-separated API keys with every scope, kept in step with the database at API start
   * (listed keys are added, env keys no longer listed are revoked). Each at least 32 characters.
   */
  API_KEYS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k.length > 0),
    )
    .pipe(
      z.array(
        z
          .string()
          .min(32, 'each key needs at least 32 characters (npm run keys:create makes good ones)')
          .max(200)
          .regex(/^[\x21-\x7e]+$/, 'keys are printable ASCII without spaces or commas'),
      ),
    ),
  /** Largest JSON request body in bytes; a bigger one gets 413. @defaultValue 1 MiB */
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .default(1024 ** 2),
  /**
   * Largest body of `POST /v1/runs/:id/metrics` (10,000 points a request). @defaultValue 4 MiB
   */
  METRICS_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .default(4 * 1024 ** 2),
  /**
   * Deepest nesting of arrays and objects a JSON body may have, checked on the raw bytes before
   * they are parsed; a deeper body gets 400. @defaultValue 64
   */
  BODY_MAX_DEPTH: z.coerce.number().int().min(8).max(10_000).default(64),
  /**
   * Metric series (distinct names) one run may have; a batch of points that would add more is
   * refused (the API answers 422, a worker fails the attempt). @defaultValue 1000
   */
  METRICS_MAX_SERIES_PER_RUN: z.coerce.number().int().min(1).max(100_000).default(1000),
  /**
   * Points one metrics read may ask for: series asked (all of a run's when no names are given,
   * times the runs of a comparison) × maxPoints. A bigger read gets 422. @defaultValue 200,000
   */
  METRICS_MAX_POINTS_PER_READ: z.coerce
    .number()
    .int()
    .min(10_000)
    .max(100_000_000)
    .default(200_000),
  /**
   * Who may scrape `GET /metrics`: `key` (an API key with the read scope, sent by Prometheus as
   * `authorization: { credentials: <key> }`), or `none` (open; for a private network).
   */
  PROMETHEUS_AUTH: z.enum(['key', 'none']).default('key'),
  /** Requests one API key may make per RATE_LIMIT_WINDOW_SECONDS, across all API replicas; 0 turns limiting off. */
  RATE_LIMIT_MAX: z.coerce.number().int().min(0).max(1_000_000).default(600),
  RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /**
   * Unknown or revoked API keys one client address may present per AUTH_FAILURE_WINDOW_SECONDS
   * before it gets 429 for the rest of the window (each costs a lookup); 0 turns it off.
   */
  AUTH_FAILURE_MAX: z.coerce.number().int().min(0).max(1_000_000).default(100),
  AUTH_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  /**
   * Bytes an event stream may have waiting in the API process for a client that does not read
   * (a stalled or hostile one); past it the stream is closed and its memory freed (the client
   * reconnects and reads again). @defaultValue 256 KiB
   */
  EVENT_STREAM_BUFFER_BYTES: z.coerce
    .number()
    .int()
    .min(16 * 1024)
    .max(1024 ** 3)
    .default(256 * 1024),
  /**
   * Largest event a stream sends whole, in bytes of its frame; a larger one (a metrics batch of
   * thousands of series) is replaced by a small `too-large` event telling the client to read
   * the run again over REST. @defaultValue 64 KiB
   */
  EVENT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .default(64 * 1024),
  /** Event streams one API key may hold open on one API process; one more gets 429. */
  EVENT_STREAMS_PER_KEY: z.coerce.number().int().min(1).max(10_000).default(10),
  /**
   * How often an API process checks that the keys of its open event streams are still live: a
   * stream whose key was revoked (keys:revoke, API_KEYS sync) ends within this time.
   */
  EVENT_STREAM_KEY_CHECK_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
  /**
   * How long an event stream waits for its Redis subscription before it answers 503 with
   * `Retry-After` (Redis unreachable) instead of hanging.
   */
  EVENT_SUBSCRIBE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
  /** Comma-separated origins allowed to call the API from a browser; empty: CORS off. */
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o.length > 0),
    )
    .pipe(z.array(z.url({ protocol: /^https?$/ }))),
  /**
   * Express `trust proxy`: `false` (default, client address is the socket's), `true`, a hop
   * count, or comma-separated addresses/subnets/names (`loopback`, `10.0.0.0/8`). Decides the
   * client address in logs and `X-Forwarded-Proto`.
   */
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((s): boolean | number | string => {
      const v = s.trim();
      if (v === 'false' || v === '') return false;
      if (v === 'true') return true;
      if (/^\d+$/.test(v)) return Number(v);
      return v;
    }),
  /** BullMQ key prefix, so several deployments or test files can share one Redis. */
  QUEUE_PREFIX: z.string().min(1).default('gq'),
  /** Compute backend for training: `auto` tries tfjs-node-gpu, tfjs-node, wasm, cpu in order. */
  TRAIN_BACKEND: z.enum(['auto', ...BACKEND_NAMES]).default('auto'),
  /** Threads for the wasm backend; defaults to the machine's available parallelism. */
  TRAIN_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  /** CPU slots (jobs trained at once) of a worker without GPUs. @defaultValue 1 */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /**
   * GPUs this worker trains on, one job per GPU: `auto` (nvidia-smi, when the backend may use
   * a GPU), `none`, or a list of device indices (`0,1`). Each job's child sees only its GPU
   * through CUDA_VISIBLE_DEVICES.
   */
  WORKER_GPUS: z
    .string()
    .regex(/^(auto|none|\d+(,\d+)*)$/, 'auto, none, or device indices like 0,1')
    .default('auto'),
  /**
   * BullMQ job lock: the worker renews it every half period while its child trains. A worker
   * that dies loses its jobs to others after at most lock + stalled interval.
   */
  WORKER_LOCK_MS: z.coerce.number().int().min(1000).max(3_600_000).default(60_000),
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).max(3_600_000).default(30_000),
  /** SIGTERM: how long running jobs get to checkpoint and go back to the queue. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
  /**
   * Memory this worker's jobs may use together, in bytes; each of its device slots gets an
   * equal share, which is its child's limit (past it the child is killed and the run fails as
   * OutOfMemory) and what the worker announces to the API. Unset: the memory cgroup's limit
   * (a container's), else the machine's total memory.
   */
  WORKER_MEMORY_BYTES: z.coerce
    .number()
    .int()
    .min(16 * 1024 ** 2)
    .optional(),
  /**
   * The API's memory cap for one job while no live worker has announced its share (a job
   * estimated above it gets 422). @defaultValue 16 GiB
   */
  JOB_MEMORY_CAP_BYTES: z.coerce
    .number()
    .int()
    .min(16 * 1024 ** 2)
    .default(16 * 1024 ** 3),
  /** How long a child asked to cancel has to stop before it is killed (the run ends cancelled). */
  CANCEL_GRACE_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** Tries per training job for transient faults (a killed child, an outage), then failed. */
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),
  /** First retry delay; it doubles with each attempt. */
  JOB_BACKOFF_MS: z.coerce.number().int().min(0).max(3_600_000).default(5000),
  /** Metric points a worker holds while Postgres is unreachable before it pauses training. */
  METRICS_BUFFER_POINTS: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
  /** How long a worker keeps retrying a Postgres write before it gives the attempt up. */
  WRITE_RETRY_LIMIT_MS: z.coerce.number().int().min(1000).max(86_400_000).default(600_000),
  /** How often a worker looks for runs whose job is gone (e.g. Redis lost its data). */
  RECONCILE_EVERY_MS: z.coerce.number().int().min(500).max(86_400_000).default(60_000),
  /** Steps between `train/*` metric points. */
  METRICS_EVERY_STEPS: z.coerce.number().int().min(1).max(100_000).default(1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof envSchema>;

const checkedEnvSchema = envSchema.superRefine((env, ctx) => {
  if (env.DATABASE_APP_ROLE !== undefined && env.DATABASE_APP_PASSWORD === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['DATABASE_APP_PASSWORD'],
      message: 'required when DATABASE_APP_ROLE is set',
    });
  }
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

/**
 * The variables that carry credentials. Each may instead be given as a file, `NAME_FILE` (Docker
 * and Kubernetes secrets are mounted as files): its content, without the trailing newline, is
 * the value. Giving both is an error, not a silent preference.
 */
export const SECRET_VARIABLES = [
  'DATABASE_URL',
  'REDIS_URL',
  'DATABASE_APP_PASSWORD',
  'API_KEYS',
  'S3_ACCESS_KEY_ID',
  'S3_SECRET_ACCESS_KEY',
  'GQ_API_KEY',
] as const;

/** `env` with every `NAME_FILE` of {@link SECRET_VARIABLES} read into `NAME`. */
export function readSecretFiles(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const resolved = { ...env };
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      throw new ConfigError(`invalid environment: ${name} and ${name}_FILE are both set; keep one`);
    }
    try {
      resolved[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new ConfigError(`invalid environment: ${name}_FILE: cannot read ${file} (${code})`);
    }
  }
  return resolved;
}

/**
 * Parses an environment (process.env by default), secrets given as files included; throws
 * ConfigError naming each bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = checkedEnvSchema.safeParse(readSecretFiles(env));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${problems}`);
  }
  return result.data;
}

const cliEnvSchema = z.object({
  /** Where the CLI finds the API. */
  GQ_API_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:8080'),
  /** The CLI's API key (`npm run keys:create`). */
  GQ_API_KEY: z.string().min(1).max(200).optional(),
});
export type CliConfig = z.infer<typeof cliEnvSchema>;

/** The CLI's environment (GQ_API_URL, GQ_API_KEY); flags override it. */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const result = cliEnvSchema.safeParse(readSecretFiles(env));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${problems}`);
  }
  return result.data;
}
