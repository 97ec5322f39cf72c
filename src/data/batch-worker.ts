/**
 * A pipeline thread: opens the data set once, then decodes, resizes and augments the batches
 * the training thread asks for, sending the pixels back as transferred buffers (no copy).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ImageDataset } from './image-dataset.js';
import { openImageSource } from './open-image-source.js';
import type { BatchWorkerInit, BatchWorkerReply, BatchWorkerRequest } from './batch-pipeline.js';

const init = workerData as BatchWorkerInit;
const port = parentPort;
if (!port) throw new Error('batch-worker must run in a worker thread');

const ready = openImageSource(init.location, init.split, init.source).then(
  (source) => new ImageDataset(source, { seed: 0, valFraction: 0 }, init.source),
);

port.on('message', (request: BatchWorkerRequest) => {
  ready
    .then((dataset) => dataset.render(request.batch, request.normalization, request.augmentation))
    .then((batch) => {
      const reply: BatchWorkerReply = { id: request.id, batch };
      port.postMessage(reply, [
        batch.images.buffer as ArrayBuffer,
        batch.labels.buffer as ArrayBuffer,
      ]);
    })
    .catch((error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      const reply: BatchWorkerReply = {
        id: request.id,
        error: { name: e.name, message: e.message },
      };
      port.postMessage(reply);
    });
});
