/**
 * Picks the compute backend: the first of tfjs-node-gpu (CUDA), tfjs-node (native CPU), wasm,
 * cpu that loads, or exactly the one asked for. The native packages are optional dependencies
 * whose install downloads libtensorflow; where that failed they are simply absent, so "which
 * backend did we really get" is logged and returned rather than assumed.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
// Side effect: tfjs-layers' Node bundle registers tfjs-core's gradient table (tfjs-core's own
// bundle has none), which training on any backend needs.
import '@tensorflow/tfjs-layers';
import { registerWasmTrainingKernels } from './wasm-kernels/register-training-kernels.js';
import { initWasmWithThreads } from './wasm-threads.js';
import { BACKEND_NAMES, type BackendName, type BackendPreference } from './backend-names.js';
import { UnrecoverableRunError } from '../spec/unrecoverable-run-error.js';

export { BACKEND_NAMES, type BackendName, type BackendPreference } from './backend-names.js';

export interface LoadedBackend {
  /** Which of our backends is active. */
  name: BackendName;
  /** tfjs's own name for it (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Compute threads the backend uses. */
  threads: number;
}

export interface LoadBackendOptions {
  /** @defaultValue 'auto' */
  backend?: BackendPreference;
  /** Threads for the wasm backend. @defaultValue os.availableParallelism() */
  threads?: number;
  logger?: BackendLogger;
}

/** Minimal logger shape so this module needs no logging library (pino's fits). */
export interface BackendLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class BackendUnavailableError extends UnrecoverableRunError {
  constructor(
    readonly backend: BackendName,
    cause: unknown,
  ) {
    super(
      `TRAIN_BACKEND=${backend} was requested but cannot be loaded: ${describe(cause)}` +
        (backend.startsWith('tfjs-node')
          ? ' (the package downloads libtensorflow when installed; check `npm ls @tensorflow/' +
            backend +
            '` and its install log)'
          : ''),
      { cause },
    );
    this.name = 'BackendUnavailableError';
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error);
}

async function activate(name: BackendName, threads: number): Promise<LoadedBackend> {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      // Importing registers the 'tensorflow' backend with tfjs-core.
      // A variable specifier: the packages are optional, so they may not exist to type-check.
      const specifier: string = `@tensorflow/${name}`;
      await import(specifier);
      if (!(await tf.setBackend('tensorflow')))
        throw new Error('tensorflow backend failed to initialise');
      return { name, tfBackend: 'tensorflow', threads: os.availableParallelism() };
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const ready = tf.findBackend('wasm')
        ? await tf.setBackend('wasm')
        : await initWasmWithThreads(threads);
      if (!ready) throw new Error('wasm backend failed to initialise');
      registerWasmTrainingKernels();
      return { name, tfBackend: 'wasm', threads: wasm.getThreadsCount() };
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend failed to initialise');
      // The cpu backend prints a "install tfjs-node" banner to stderr on first use; we already
      // log the backend choice and why faster ones were skipped.
      (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
      return { name, tfBackend: 'cpu', threads: 1 };
    }
  }
}

/**
 * Loads and activates a backend. With `auto`, tries each in order and logs why the faster ones
 * were skipped; with a name, fails with {@link BackendUnavailableError} if that one cannot load.
 */
export async function loadBackend(options: LoadBackendOptions = {}): Promise<LoadedBackend> {
  const preference = options.backend ?? 'auto';
  const threads = options.threads ?? os.availableParallelism();
  const logger = options.logger;
  const candidates = preference === 'auto' ? BACKEND_NAMES : [preference];
  const skipped: Record<string, string> = {};
  for (const name of candidates) {
    try {
      const loaded = await activate(name, threads);
      logger?.info(
        { backend: loaded.name, threads: loaded.threads, skipped },
        `compute backend: ${loaded.name}`,
      );
      return loaded;
    } catch (error) {
      if (preference !== 'auto') throw new BackendUnavailableError(name, error);
      skipped[name] = describe(error);
    }
  }
  throw new Error(`no compute backend could be loaded: ${JSON.stringify(skipped)}`);
}
