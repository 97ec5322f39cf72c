/**
 * A worker process on a test file's database, queue prefix and scratch directory, with the
 * defaults tests want (wasm, one thread). Built on worker-process.ts.
 */
import { REDIS_URL } from './queue.js';
import { startWorkerProcess, type WorkerProcess } from './worker-process.js';

export { waitFor } from './worker-process.js';

export function startWorker(options: {
  databaseUrl: string;
  queuePrefix: string;
  scratchRoot: string;
  env?: Record<string, string>;
}): { process: WorkerProcess['proc']; log(): string; stop(): Promise<void> } {
  const worker = startWorkerProcess({
    DATABASE_URL: options.databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: options.queuePrefix,
    SCRATCH_ROOT: options.scratchRoot,
    TRAIN_BACKEND: 'wasm',
    TRAIN_THREADS: '1',
    ...options.env,
  });
  return {
    process: worker.proc,
    log: worker.log,
    async stop() {
      await worker.terminate();
    },
  };
}
