/**
 * The input pipeline: a pool of worker threads that decode, resize and augment batches while
 * the training thread computes, with batches requested ahead of use (prefetch). The training
 * thread only decides *which* images and seeds make a batch, so the order stays deterministic
 * however the threads interleave.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Augmentation } from '../spec/augmentation-spec.js';
import type { BatchRequest } from './image-dataset.js';
import type { DataSplit } from './idx-source.js';
import type { Normalization } from './normalization.js';
import type { FileDatasetLocation, SourceOptions } from './open-image-source.js';
import { DatasetError } from './raw-image.js';
import type { ImageBatch } from './synthetic.js';

export interface BatchWorkerInit {
  location: FileDatasetLocation;
  split: DataSplit;
  source: SourceOptions;
}

export interface BatchWorkerRequest {
  id: number;
  batch: BatchRequest;
  normalization: Normalization;
  augmentation?: Augmentation;
}

export type BatchWorkerReply =
  | { id: number; batch: ImageBatch; error?: undefined }
  | { id: number; error: { name: string; message: string } };

/**
 * Starts the worker entry beside this file: the .js file when built; under tsx (dev, tests) the
 * .ts file through tsx's loader, registered inside the thread (worker threads do not take
 * `--import` from execArgv everywhere, and vitest does not pass it on).
 */
function startWorker(workerData: BatchWorkerInit): Worker {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  const file = path.join(path.dirname(here), `batch-worker${ext}`);
  if (ext !== '.ts') return new Worker(file, { workerData });
  const url = JSON.stringify(pathToFileURL(file).href);
  const code = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${url}); });`;
  return new Worker(code, { eval: true, workerData });
}

interface Pending {
  resolve(batch: ImageBatch): void;
  reject(error: Error): void;
  worker: number;
}

export class BatchPipeline {
  private readonly workers: Worker[];
  private readonly busy: number[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(init: BatchWorkerInit, threads: number) {
    this.workers = Array.from({ length: Math.max(1, threads) }, () => startWorker(init));
    this.busy = this.workers.map(() => 0);
    this.workers.forEach((worker, w) => {
      worker.on('message', (reply: BatchWorkerReply) => {
        const entry = this.pending.get(reply.id);
        if (!entry) return;
        this.pending.delete(reply.id);
        this.busy[w] = (this.busy[w] as number) - 1;
        if (reply.error) {
          // Data problems (a corrupt image) fail the run; the message says which file.
          const error = new DatasetError(reply.error.message);
          entry.reject(error);
        } else entry.resolve(reply.batch);
      });
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`a data pipeline thread exited with code ${code}`));
      });
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
  }

  /** Renders `batch` on the least busy thread. */
  render(
    batch: BatchRequest,
    normalization: Normalization,
    augmentation?: Augmentation,
  ): Promise<ImageBatch> {
    if (this.failure) return Promise.reject(this.failure);
    let w = 0;
    for (let i = 1; i < this.busy.length; i++)
      if ((this.busy[i] as number) < (this.busy[w] as number)) w = i;
    const id = this.nextId++;
    this.busy[w] = (this.busy[w] as number) + 1;
    const request: BatchWorkerRequest = {
      id,
      batch,
      normalization,
      ...(augmentation ? { augmentation } : {}),
    };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: w });
      (this.workers[w] as Worker).postMessage(request);
    });
  }

  async close(): Promise<void> {
    this.fail(new Error('pipeline closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
