/**
 * The reconciler after Redis lost its data: every kind of run Postgres holds as queued or running
 * gets its job back, with its own job name and payload; external runs have no job and are left
 * to their trainer.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalJobSchema, trainJobSchema } from '../../src/queue/job-payloads.js';
import { JOB_NAMES } from '../../src/queue/training-queue.js';
import { createRunLifecycle } from '../../src/runs/run-lifecycle.js';
import { createLogger } from '../../src/logger.js';
import { reconcileOnce } from '../../src/worker/reconciler.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';
import { recordedEvents } from '../helpers/recorded-events.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;

beforeAll(async () => {
  db = await createTestDatabase('reconciler');
  queue = await createTestQueue('reconciler');
});
afterAll(async () => {
  await queue?.close();
  await db?.drop();
});

const model = { arch: 'googlenet', numClasses: 2, inputSize: 32, width: 0.125 };
const trainConfig = {
  model,
  dataset: { format: 'synthetic', numClasses: 2, size: 64, seed: 1 },
  train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
};
const evalConfig = {
  checkpoint: { runId: randomUUID(), checkpointId: randomUUID(), step: 8, location: 'runs/x' },
  model,
  seed: 0,
  dataset: { format: 'synthetic', numClasses: 2, size: 64, seed: 1 },
  batchSize: 16,
};

describe('reconciler', () => {
  it('re-enqueues queued and running runs of every kind whose jobs Redis lost, each with its own job', async () => {
    const retry = { attempts: 3, backoffMs: 300 };
    const lifecycle = createRunLifecycle({
      prisma: db.prisma,
      events: recordedEvents(),
      queue: queue.queue,
      retry,
    });
    // Rows as Postgres kept them; their jobs are gone (Redis restarted empty).
    const queuedEval = await db.prisma.run.create({
      data: { kind: 'eval', status: 'queued', config: evalConfig },
    });
    const runningEval = await db.prisma.run.create({
      data: { kind: 'eval', status: 'running', attempts: 1, lease: 'old', config: evalConfig },
    });
    const queuedTrain = await db.prisma.run.create({
      data: { kind: 'train', status: 'queued', config: trainConfig },
    });
    const external = await db.prisma.run.create({
      data: { kind: 'external', status: 'running', name: 'notebook', config: {} },
    });

    const report = await reconcileOnce(
      {
        prisma: db.prisma,
        queue: queue.queue,
        lifecycle,
        logger: createLogger({ LOG_LEVEL: 'silent' }, 'test'),
        retry,
      },
      0,
    );

    expect(report.failed).toEqual([]);
    expect(report.requeued.sort()).toEqual([queuedEval.id, runningEval.id, queuedTrain.id].sort());
    for (const run of [queuedEval, runningEval]) {
      const job = await queue.queue.getJob(run.id);
      expect(job?.name).toBe(JOB_NAMES.eval);
      expect(evalJobSchema.parse(job?.data)).toEqual(
        evalJobSchema.parse({ runId: run.id, spec: evalConfig }),
      );
      const row = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
      expect(row).toMatchObject({ status: 'queued', lease: null });
    }
    const trainJob = await queue.queue.getJob(queuedTrain.id);
    expect(trainJob?.name).toBe(JOB_NAMES.train);
    expect(trainJobSchema.safeParse(trainJob?.data).success).toBe(true);
    // An external run has no job to lose: its trainer finishes it.
    expect(await queue.queue.getJob(external.id)).toBeUndefined();
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id: external.id } })).status).toBe(
      'running',
    );
  });
});
