import * as tf from '@tensorflow/tfjs-core';
import { loadBackend } from './src/model/backend.ts';
import { createGoogLeNet, predictLogits } from './src/model/googlenet.ts';
import { createTrainer } from './src/model/train-step.ts';
import { syntheticBatch } from './src/data/synthetic.ts';
const opt = JSON.parse(process.argv[2] ?? '{"type":"sgd","learningRate":0.02,"momentum":0.9}');
await loadBackend({ backend: 'wasm', threads: 1 });
const C = 10, S = 32, B = 32, N = 320;
const model = createGoogLeNet({ numClasses: C, inputSize: S, width: 0.25, seed: 1 });
const trainer = createTrainer({ model, optimizer: opt, stepsPerEpoch: N / B, totalSteps: 1000, seed: 1 });
const spec = { numClasses: C, size: N, seed: 7, inputSize: S, channels: 3 as const };
const all = syntheticBatch(spec, 0, N);
const X = tf.tensor4d(all.images, [N, S, S, 3]); const Y = tf.tensor1d(all.labels, 'int32');
const t0 = Date.now();
for (let epoch = 0; epoch < 40; epoch++) {
  for (let i = 0; i < N / B; i++) {
    const x = tf.slice(X, [i * B, 0, 0, 0], [B, -1, -1, -1]) as tf.Tensor4D; const y = tf.slice(Y, [i * B], [B]) as tf.Tensor1D;
    trainer.trainStep(x, y); tf.dispose([x, y]);
  }
  const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(predictLogits(model, X), 1), Y), 'float32')).dataSync()[0]);
  console.log('epoch', epoch, 'acc', acc?.toFixed(3), 'elapsed', Date.now() - t0);
  if ((acc ?? 0) >= 0.9) break;
}
process.exit(0);
