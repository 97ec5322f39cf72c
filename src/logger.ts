/**
 * Structured JSON logs (pino). Every process makes one root logger in main.ts and hands child
 * loggers carrying runId / jobId / workerId to the code that works on one of those.
 */
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, service: string): Logger {
  return pino({ level: config.LOG_LEVEL, base: { service, pid: process.pid } });
}
