/**
 * Checkpoint save and load times for a full-width GoogLeNet (1000 classes, 224x224, aux heads:
 * 13.4M weights) with its optimizer state, through each artifact store.
 *
 *   npm run bench:artifacts -- [--stores postgres,fs,s3] [--optimizer sgd|adam] [--repeats 3] [--json]
 *
 * Per store, the median of --repeats rounds of:
 * - write: saveCheckpoint into a local directory (what the training child waits for);
 * - upload: the worker parent putting those files into the store;
 * - download: fetching them back onto another local disk (the resume path);
 * - load: loadCheckpoint into a fresh model (checksums, shapes, assignment).
 * postgres uses a scratch database on DATABASE_URL's server; fs a temporary directory; s3 an
 * s3rver (a fake S3 on local disk, in this process), so its figures say nothing about AWS.
 * With --json the last line is `{ checkpointBytes, optimizer, stores: { <name>: {...ms} } }`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import S3rver from 's3rver';
import type { ArtifactStore } from '../src/artifacts/artifact-store.js';
import { createFsArtifactStore } from '../src/artifacts/fs-artifact-store.js';
import { createPostgresArtifactStore } from '../src/artifacts/postgres-artifact-store.js';
import { createS3ArtifactStore } from '../src/artifacts/s3-artifact-store.js';
import { loadConfig } from '../src/config.js';
import { createDatabase, dropDatabase, withDatabase } from '../src/db/databases.js';
import { createPrismaClient, migrateDatabase } from '../src/db/index.js';
import { loadBackend } from '../src/model/backend.js';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoints/checkpoint.js';
import { createGoogLeNet } from '../src/model/googlenet.js';
import { createTrainer } from '../src/model/train-step.js';
import { createCheckpointSync } from '../src/checkpoints/checkpoint-sync.js';
import { median } from './stats.js';

const STORES = ['postgres', 'fs', 's3'] as const;
type StoreName = (typeof STORES)[number];

const { values: args } = parseArgs({
  options: {
    stores: { type: 'string', default: STORES.join(',') },
    optimizer: { type: 'string', default: 'sgd' },
    repeats: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const stores = (args.stores ?? '').split(',').filter(Boolean) as StoreName[];
const bad = stores.filter((s) => !STORES.includes(s));
const repeats = Number(args.repeats);
if (bad.length > 0 || !['sgd', 'adam'].includes(args.optimizer ?? '') || !(repeats >= 1)) {
  process.stderr.write('usage: --stores postgres,fs,s3 --optimizer sgd|adam --repeats N\n');
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${line}\n`);

const config = loadConfig();
const root = await mkdtemp(path.join(os.tmpdir(), 'gq-bench-artifacts-'));
await loadBackend({ backend: 'wasm' });

// One training step gives the optimizer its slots (momentum, or Adam's m and v).
const spec = { numClasses: 1000, inputSize: 224, width: 1, auxLogits: true } as const;
const model = createGoogLeNet({ ...spec, seed: 1 });
const trainer = createTrainer({
  model,
  optimizer:
    args.optimizer === 'adam'
      ? { type: 'adam', learningRate: 1e-4 }
      : { type: 'sgd', learningRate: 0.01, momentum: 0.9 },
  stepsPerEpoch: 10,
  totalSteps: 10,
});
tf.tidy(() => {
  trainer.trainStep(tf.randomUniform([1, 224, 224, 3]), tf.tensor1d([7], 'int32'));
});
const fresh = createGoogLeNet({ ...spec, seed: 2 });

interface Figures {
  writeMs: number;
  uploadMs: number;
  downloadMs: number;
  loadMs: number;
}

async function time<T>(op: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await op();
  return [value, performance.now() - t0];
}

let checkpointBytes = 0;
async function measureStore(artifacts: ArtifactStore, name: string): Promise<Figures> {
  const rounds: Figures[] = [];
  for (let i = 0; i < repeats; i++) {
    const runId = `bench-${i}`;
    const hostA = createCheckpointSync({ artifacts, scratchRoot: path.join(root, name, 'a') });
    const hostB = createCheckpointSync({ artifacts, scratchRoot: path.join(root, name, 'b') });
    const dir = path.join(hostA.writeDir(runId), 'step-1');
    const [written, writeMs] = await time(() =>
      saveCheckpoint(dir, {
        model,
        optimizer: trainer.optimizer.getState(),
        state: { step: 1, epoch: 0 },
      }),
    );
    checkpointBytes = written.manifest.files.reduce((sum, f) => sum + f.bytes, 0);
    const saved = { ...written, step: 1 };
    const [location, uploadMs] = await time(() => hostA.upload(runId, saved));
    const [resume, downloadMs] = await time(() => hostB.fetchForResume(runId, [location]));
    if (resume.dirs.length !== 1) throw new Error(`download failed: ${JSON.stringify(resume)}`);
    const [loaded, loadMs] = await time(() => loadCheckpoint(resume.dirs[0] as string, fresh));
    tf.dispose([...loaded.optimizer.slots.values()]);
    rounds.push({ writeMs, uploadMs, downloadMs, loadMs });
    await hostB.cleanup(runId, []);
    await artifacts.delete(`runs/${runId}`);
  }
  const pick = (k: keyof Figures) => Math.round(median(rounds.map((r) => r[k])));
  return {
    writeMs: pick('writeMs'),
    uploadMs: pick('uploadMs'),
    downloadMs: pick('downloadMs'),
    loadMs: pick('loadMs'),
  };
}

const results: Partial<Record<StoreName, Figures>> = {};
try {
  for (const name of stores) {
    if (name === 'postgres') {
      const dbName = `gq_bench_artifacts_${randomBytes(4).toString('hex')}`;
      await createDatabase(config.DATABASE_URL, dbName);
      const url = withDatabase(config.DATABASE_URL, dbName);
      try {
        await migrateDatabase(url);
        const prisma = createPrismaClient(url);
        const store = createPostgresArtifactStore(url);
        results.postgres = await measureStore(store, name);
        await store.close();
        await prisma.$disconnect();
      } finally {
        await dropDatabase(config.DATABASE_URL, dbName);
      }
    } else if (name === 'fs') {
      results.fs = await measureStore(createFsArtifactStore(path.join(root, 'shared')), name);
    } else {
      const server = new S3rver({
        port: 0,
        address: '127.0.0.1',
        silent: true,
        directory: path.join(root, 's3rver'),
        configureBuckets: [{ name: 'bench', configs: [] }],
      });
      const { port } = await server.run();
      const store = createS3ArtifactStore({
        bucket: 'bench',
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${port}`,
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      });
      try {
        results.s3 = await measureStore(store, name);
      } finally {
        await store.close();
        await server.close();
      }
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}

const mb = (checkpointBytes / 1e6).toFixed(1);
log(
  `full-width GoogLeNet checkpoint (1000 classes, 224x224, aux heads, ${args.optimizer} state): ${mb} MB, median of ${repeats}`,
);
log('store      write local  upload  download  load   (ms; MB/s of upload and download)');
for (const [name, f] of Object.entries(results)) {
  const rate = (ms: number) => (checkpointBytes / 1e6 / (ms / 1000)).toFixed(0);
  log(
    `${name.padEnd(10)} ${String(f.writeMs).padStart(11)}  ${String(f.uploadMs).padStart(6)}  ${String(f.downloadMs).padStart(8)}  ${String(f.loadMs).padStart(5)}   (${rate(f.uploadMs)} / ${rate(f.downloadMs)} MB/s)`,
  );
}
if (args.json) {
  log(JSON.stringify({ checkpointBytes, optimizer: args.optimizer, repeats, stores: results }));
}
// The wasm backend's threads keep the process alive.
process.exit(0);
