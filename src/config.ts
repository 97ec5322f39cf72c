/**
 * The only reader of process.env. Parsed once with zod; a bad value fails fast with a message
 * naming the variable. Every default lives here; `.env.example` lists every variable.
 */
import { z } from 'zod';
import { BACKEND_NAMES } from './model/backend.js';

const envSchema = z.object({
  /** Compute backend for training: `auto` tries tfjs-node-gpu, tfjs-node, wasm, cpu in order. */
  TRAIN_BACKEND: z.enum(['auto', ...BACKEND_NAMES]).default('auto'),
  /** Threads for the wasm backend; defaults to the machine's available parallelism. */
  TRAIN_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses an environment (process.env by default); throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${problems}`);
  }
  return result.data;
}
