import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY } from '../../src/queue/enqueue-run.js';
import { LeaseLostError } from '../../src/runs/lease.js';
import { createRunLifecycle, type RunLifecycle } from '../../src/runs/run-lifecycle.js';
import { createTestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';
import { recordedEvents } from '../helpers/recorded-events.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let published: ReturnType<typeof recordedEvents>;
let lifecycle: RunLifecycle;

beforeAll(async () => {
  db = await createTestDatabase('run_lifecycle');
  queue = await createTestQueue('run-lifecycle');
});
afterAll(async () => {
  await queue?.close();
  await db?.drop();
});
beforeEach(() => {
  published = recordedEvents();
  lifecycle = createRunLifecycle({
    prisma: db.prisma,
    events: published,
    queue: queue.queue,
    retry: DEFAULT_RETRY_POLICY,
  });
});

const statuses = () => published.events.map((e) => (e.type === 'status' ? e.status : e.type));
const statusOf = async (id: string) =>
  (await db.prisma.run.findUniqueOrThrow({ where: { id } })).status;
const failure = { name: 'E', message: 'boom', attempt: 1, unrecoverable: true };
const trainConfig = {
  model: { arch: 'googlenet', numClasses: 2, inputSize: 32, width: 0.125 },
  dataset: { format: 'synthetic', numClasses: 2, size: 64, seed: 1 },
  train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
};

describe('run lifecycle', () => {
  it('announces every status it writes, after the write, and nothing for a refused one', async () => {
    const { id } = await db.prisma.run.create({ data: { kind: 'train', config: {} } });
    const lease = (await lifecycle.claim(id, { workerId: 'w1', attempt: 1 }))!;
    expect(await statusOf(id)).toBe('running');
    const other = (await lifecycle.claim(id, { workerId: 'w2', attempt: 1 }))!;
    // The first attempt lost the run: its final status is refused and announced nowhere.
    await expect(lifecycle.fail(lease, failure)).rejects.toBeInstanceOf(LeaseLostError);
    await lifecycle.requeue(other);
    expect(await statusOf(id)).toBe('queued');
    const third = (await lifecycle.claim(id, { workerId: 'w2', attempt: 2 }))!;
    await lifecycle.cancel(third);
    expect(await statusOf(id)).toBe('cancelled');
    expect(await lifecycle.claim(id, { workerId: 'w3', attempt: 3 })).toBeNull();
    expect(await lifecycle.failUnowned(id, failure)).toBe(false);
    expect(statuses()).toEqual(['running', 'running', 'queued', 'running', 'cancelled']);
    expect(published.events.every((e) => e.runId === id)).toBe(true);
  });

  it('requeues a run whose job vanished with an event and a new job, once', async () => {
    const run = await db.prisma.run.create({ data: { kind: 'train', config: trainConfig } });
    await lifecycle.claim(run.id, { workerId: 'w1', attempt: 1 });
    const seen = await db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(await lifecycle.requeueLost(seen)).toBe(true);
    expect(await statusOf(run.id)).toBe('queued');
    expect(await (await queue.queue.getJob(run.id))?.getState()).toBe('prioritized');
    // What the reconciler read is stale now: a second pass changes nothing.
    expect(await lifecycle.requeueLost(seen)).toBe(false);
    expect(statuses()).toEqual(['running', 'queued']);
  });

  it('queues a new run with its job, and cancels it before a worker starts it', async () => {
    const run = await lifecycle.queue({
      kind: 'train',
      name: null,
      priority: 50,
      config: trainConfig,
      idempotencyKey: null,
    });
    expect(await queue.queue.getJob(run.id)).toBeDefined();
    expect((await lifecycle.cancelUnstarted(run.id))?.status).toBe('cancelled');
    expect(await lifecycle.cancelUnstarted(run.id)).toBeNull();
    expect(statuses()).toEqual(['queued', 'cancelled']);
  });

  it('retries a failed run into the queue, and refuses one that is not failed', async () => {
    const run = await db.prisma.run.create({ data: { kind: 'train', config: trainConfig } });
    const lease = (await lifecycle.claim(run.id, { workerId: 'w1', attempt: 1 }))!;
    await lifecycle.fail(lease, failure);
    expect((await lifecycle.retry(run.id)).status).toBe('queued');
    await expect(lifecycle.retry(run.id)).rejects.toThrow(/changed meanwhile/);
    expect(statuses()).toEqual(['running', 'failed', 'queued']);
  });
});
