/**
 * Checkpoints through the artifact store as the worker moves them: a real checkpoint written to
 * a local directory, uploaded, downloaded onto another "disk" and loaded into a fresh model —
 * through the postgres and fs stores — and a corrupt chunk that the resume refuses.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.js';
import { createFsArtifactStore } from '../../src/artifacts/fs-artifact-store.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/checkpoints/checkpoint.js';
import { createTrainer } from '../../src/model/train-step.js';
import {
  checkpointLocation,
  checkpointLocationOfKey,
  runCheckpointsPrefix,
} from '../../src/checkpoints/checkpoint-location.js';
import { createCheckpointSync } from '../../src/checkpoints/checkpoint-sync.js';
import type { CheckpointSaved } from '../../src/worker/ipc.js';
import { useBackend } from '../helpers/backends.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { sameBytes, tinyBatch, tinyModel, weightBytes } from '../helpers/tiny-training.js';

const RUN_ID = '00000000-0000-4000-8000-00000000c5c5';
let db: TestDatabase;
let root: string;

beforeAll(async () => {
  await useBackend('cpu');
  db = await createTestDatabase('checkpoint_sync');
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-sync-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

/** Trains a tiny model two steps and saves a checkpoint as the training child does. */
async function writeCheckpoint(dir: string, step: number) {
  const model = tinyModel(step);
  const trainer = createTrainer({
    model,
    optimizer: { type: 'adam', learningRate: 0.01 },
    stepsPerEpoch: 10,
    totalSteps: 10,
  });
  for (let i = 0; i < 2; i++) {
    const { images, labels } = tinyBatch(i * 4);
    trainer.trainStep(images, labels);
    tf.dispose([images, labels]);
  }
  const { location, files, bytes, sha256 } = await saveCheckpoint(dir, {
    model,
    optimizer: trainer.optimizer.getState(),
    state: { step, epoch: 0 },
  });
  const saved: CheckpointSaved = { step, epoch: 0, location, files, bytes, sha256, metrics: {} };
  return { model, saved };
}

describe.each([
  { name: 'postgres', make: (): ArtifactStore => createPostgresArtifactStore(db.url) },
  { name: 'fs', make: (): ArtifactStore => createFsArtifactStore(path.join(root, 'shared')) },
])('checkpoints through the $name store', ({ name, make }) => {
  it('upload on host A, download on host B: the checkpoint loads into a fresh model with identical weights', async () => {
    const artifacts = make();
    const hostA = createCheckpointSync({ artifacts, scratchRoot: path.join(root, name, 'a') });
    const hostB = createCheckpointSync({ artifacts, scratchRoot: path.join(root, name, 'b') });
    const { model, saved } = await writeCheckpoint(path.join(hostA.writeDir(RUN_ID), 'step-2'), 2);

    const location = await hostA.upload(RUN_ID, saved);
    expect(location).toBe(`runs/${RUN_ID}/step-2`);
    // The local copy is gone once the store holds it.
    expect(await readdir(hostA.writeDir(RUN_ID))).toEqual([]);

    const resume = await hostB.fetchForResume(RUN_ID, [location]);
    expect(resume.unusable).toEqual([]);
    expect(resume.dirs).toHaveLength(1);
    const dir = resume.dirs[0] as string;
    expect(dir.startsWith(path.join(root, name, 'b'))).toBe(true);
    expect(resume.locationOf(dir)).toBe(location);

    const fresh = tinyModel(99);
    const loaded = await loadCheckpoint(dir, fresh);
    tf.dispose([...loaded.optimizer.slots.values()]);
    expect(loaded.state.step).toBe(2);
    const expected = weightBytes(model);
    for (const [weight, bytes] of weightBytes(fresh)) {
      expect(sameBytes(bytes, expected.get(weight) as Uint8Array), weight).toBe(true);
    }
    await hostB.cleanup(RUN_ID, []);
    await artifacts.delete(`runs/${RUN_ID}`);
    await artifacts.close();
  });
});

describe('resume from the postgres store', () => {
  it('refuses a checkpoint with a corrupt chunk (reported unusable, nothing left on disk) and falls back to the older one', async () => {
    const artifacts = createPostgresArtifactStore(db.url);
    const host = createCheckpointSync({ artifacts, scratchRoot: path.join(root, 'corrupt') });
    for (const step of [4, 8]) {
      const { saved } = await writeCheckpoint(
        path.join(host.writeDir(RUN_ID), `step-${step}`),
        step,
      );
      await host.upload(RUN_ID, saved);
    }
    await db.prisma.$executeRaw`
      UPDATE "ArtifactChunk" SET data = set_byte(data, 100, (get_byte(data, 100) + 1) % 256)
      WHERE "index" = 0 AND "artifactId" =
        (SELECT id FROM "Artifact" WHERE key = ${`runs/${RUN_ID}/step-8/weights.bin`})`;

    const resume = await host.fetchForResume(RUN_ID, [
      `runs/${RUN_ID}/step-8`,
      `runs/${RUN_ID}/step-4`,
    ]);
    expect(resume.unusable).toHaveLength(1);
    expect(resume.unusable[0]?.location).toBe(`runs/${RUN_ID}/step-8`);
    expect(resume.unusable[0]?.reason).toMatch(/weights\.bin.*corrupt|corrupt.*weights\.bin/);
    expect(resume.dirs.map((d) => path.basename(d))).toEqual(['step-4']);
    // The refused download left no partial directory behind.
    expect(await readdir(path.dirname(resume.dirs[0] as string))).toEqual(['step-4']);
    await host.cleanup(RUN_ID, []);
    await artifacts.delete(`runs/${RUN_ID}`);
    await artifacts.close();
  });

  it('after a job, removes the scratch files and the stored checkpoints that have no row', async () => {
    const artifacts = createPostgresArtifactStore(db.url);
    const host = createCheckpointSync({ artifacts, scratchRoot: path.join(root, 'sweep') });
    for (const step of [4, 8]) {
      const { saved } = await writeCheckpoint(
        path.join(host.writeDir(RUN_ID), `step-${step}`),
        step,
      );
      await host.upload(RUN_ID, saved);
    }
    await host.fetchForResume(RUN_ID, [`runs/${RUN_ID}/step-8`]);
    // Only step 8 has a row: step 4's bytes are what a worker dying before its row leaves.
    await host.cleanup(RUN_ID, [`runs/${RUN_ID}/step-8`]);
    const left = (await artifacts.list(`runs/${RUN_ID}`)).map((a) => a.key.split('/')[2]);
    expect(new Set(left)).toEqual(new Set(['step-8']));
    expect(await readdir(path.join(root, 'sweep', 'runs'))).toEqual([]);
    expect(await readdir(path.join(root, 'sweep', 'resume'))).toEqual([]);
    await artifacts.delete(`runs/${RUN_ID}`);
    await artifacts.close();
  });
});

describe('checkpoint locations', () => {
  it('read back from a stored key the location they were built from, and nothing from other keys', () => {
    const location = checkpointLocation(RUN_ID, 120);
    expect(location).toBe(`${runCheckpointsPrefix(RUN_ID)}/step-120`);
    expect(checkpointLocationOfKey(`${location}/weights.bin`)).toBe(location);
    expect(checkpointLocationOfKey(location)).toBe(location);
    expect(checkpointLocationOfKey(`${runCheckpointsPrefix(RUN_ID)}/notes.txt`)).toBeUndefined();
    expect(checkpointLocationOfKey(`models/${RUN_ID}/model.json`)).toBeUndefined();
  });
});
