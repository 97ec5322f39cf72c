import * as tf from '@tensorflow/tfjs-core';
import { loadBackend } from './src/model/backend.ts';
import { createGoogLeNet } from './src/model/googlenet.ts';
import { createTrainer } from './src/model/train-step.ts';
import { syntheticBatch } from './src/data/synthetic.ts';
const backend = process.argv[2] ?? 'wasm';
const width = Number(process.argv[3] ?? 1);
const B = Number(process.argv[4] ?? 32);
await loadBackend({ backend: backend as any, threads: Number(process.env.THREADS ?? 2) });
const model = createGoogLeNet({ numClasses: 10, inputSize: 32, width });
const trainer = createTrainer({ model, optimizer: { type: 'sgd', learningRate: 0.01, momentum: 0.9 }, stepsPerEpoch: 10, totalSteps: 100 });
const spec = { numClasses: 10, size: 320, seed: 1, inputSize: 32, channels: 3 as const };
const t0 = Date.now();
for (let i = 0; i < 40; i++) {
  const b = syntheticBatch(spec, (i * B) % 320, B);
  const x = tf.tensor4d(b.images, [B, 32, 32, 3]); const y = tf.tensor1d(b.labels, 'int32');
  const s = performance.now();
  const r = trainer.trainStep(x, y);
  tf.dispose([x, y]);
  console.log(i, r.loss.toFixed(3), r.accuracy.toFixed(2), ((performance.now() - s)).toFixed(0) + 'ms', tf.memory().numTensors);
}
console.log('total', Date.now() - t0);
