/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against the
 * real API: the list shows runs and follows their submission, progress and status without a
 * reload, a run's page draws its charts, a point logged to an external run appears without a
 * reload, and the cancel button cancels. Screenshots go to test-output/.
 *
 * Neither page polls, so whatever changes without a reload came over the event streams.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startApi, trainBody, type TestApi } from '../helpers/api.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue, REDIS_URL } from '../helpers/queue.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { createRunEventPublisher } from '../../src/queue/run-events.js';
import { workerWrites } from '../helpers/worker-writes.js';
import { TRAINING_QUEUE } from '../../src/queue/training-queue.js';

const OUTPUT = path.resolve('test-output');

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let browser: Browser;
let page: Page;
let externalId: string;

beforeAll(async () => {
  await mkdir(OUTPUT, { recursive: true });
  db = await createTestDatabase('browser_dashboard');
  queue = await createTestQueue('browser-dashboard');
  api = await startApi(db, queue.queue);
  const created = await postJson(`${api.url}/v1/runs`, {
    kind: 'external',
    name: 'notebook-run',
    config: { lr: 0.01, note: 'logged from a notebook' },
  });
  externalId = created.json.id;
  // 20,000 loss points with a spike, an accuracy per 1,000 steps.
  const loss = Array.from({ length: 20_000 }, (_, step) => ({
    name: 'train/loss',
    step,
    value: 2.5 / (1 + step / 2000) + 0.05 * Math.sin(step / 7) + (step === 12_345 ? 3 : 0),
  }));
  for (let i = 0; i < loss.length; i += 10_000)
    await postJson(`${api.url}/v1/runs/${externalId}/metrics`, {
      points: loss.slice(i, i + 10_000),
    });
  await postJson(`${api.url}/v1/runs/${externalId}/metrics`, {
    points: Array.from({ length: 20 }, (_, i) => ({
      name: 'val/accuracy',
      step: i * 1000 + 999,
      value: 0.3 + 0.6 * (1 - Math.exp(-i / 5)),
    })),
  });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (error) => console.error('page error:', error));
});
afterAll(async () => {
  await browser?.close();
  await api?.close();
  await queue?.close();
  await db?.drop();
});

describe('dashboard', () => {
  it('takes the key from #token=, forgets it from the address bar, and lists the runs', async () => {
    await page.goto(`${api.url}/#token=${api.key}`);
    await page.getByRole('link', { name: 'notebook-run' }).waitFor();
    expect(page.url()).toBe(`${api.url}/`);
    expect(await page.evaluate("localStorage.getItem('gq.apiKey')")).toBe(api.key);
    const row = page.locator(`tr[data-run="${externalId}"]`);
    await expect.poll(() => row.locator('.status').textContent()).toBe('running');
    // The best of the 20 val/accuracy points logged (the last, 0.3 + 0.6 * (1 - e^-3.8)).
    expect(await row.locator('.best').textContent()).toBe('0.887');
    await page.screenshot({ path: path.join(OUTPUT, 'runs-list.png'), fullPage: true });
  });

  it('follows submissions, progress and status changes without a reload', async () => {
    await page.getByText('● live').waitFor();
    await page.evaluate('window.notReloaded = true');
    const submitted = await postJson(`${api.url}/v1/runs`, trainBody({ name: 'followed' }));
    const id = submitted.json.id as string;
    const row = page.locator(`#runs tr[data-run="${id}"]`);
    await expect
      .poll(() => row.locator('.status').textContent(), { timeout: 10_000 })
      .toBe('queued');

    // A BullMQ worker takes the job and holds it (the queue panel's active job); the run is
    // written through the worker's own store and event publisher.
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const bull = new Worker(TRAINING_QUEUE, () => held, {
      connection: { url: REDIS_URL },
      prefix: queue.prefix,
    });
    const workerRedis = new Redis(REDIS_URL);
    const artifacts = createPostgresArtifactStore(db.url);
    const { store, lifecycle } = workerWrites(
      db.prisma,
      artifacts,
      queue.queue,
      createRunEventPublisher(workerRedis, queue.prefix),
    );
    try {
      await expect.poll(async () => (await queue.queue.getJob(id))?.getState()).toBe('active');
      const lease = (await lifecycle.claim(id, { workerId: 'browser-test', attempt: 1 }))!;
      await expect
        .poll(() => row.locator('.status').textContent(), { timeout: 10_000 })
        .toBe('running');
      const activeJob = page.locator(`#active-jobs tr[data-run="${id}"]`);
      await expect
        .poll(() => activeJob.textContent(), { timeout: 10_000 })
        .toMatch(/followed\s+train\s+browser-test/);
      await store.updateProgress(lease, { step: 6, totalSteps: 10, epoch: 0 });
      await expect
        .poll(() => row.locator('.progress-cell').textContent(), { timeout: 10_000 })
        .toMatch(/60%/);
      expect(await activeJob.locator('.progress-cell').textContent()).toMatch(/60%/);
      await page.screenshot({ path: path.join(OUTPUT, 'runs-list-live.png'), fullPage: true });
      await lifecycle.fail(lease, {
        name: 'Boom',
        message: 'failed on purpose',
        attempt: 1,
        unrecoverable: true,
      });
      await expect
        .poll(() => row.locator('.status').textContent(), { timeout: 10_000 })
        .toBe('failed');
    } finally {
      release();
      await bull.close();
      await workerRedis.quit();
      await artifacts.close();
    }
    expect(await page.evaluate('window.notReloaded')).toBe(true);
  });

  it("draws a run's charts and adds a newly logged point without a reload", async () => {
    await page.getByRole('link', { name: 'notebook-run' }).click();
    await page.waitForURL(`${api.url}/runs/${externalId}`);
    const loss = page.locator('.chart', { has: page.locator('h3', { hasText: 'Loss' }) });
    await loss.locator('canvas').waitFor();
    // Bucketed to the chart's width, not 20,000 points.
    const drawn = Number(await loss.getAttribute('data-points'));
    expect(drawn).toBeGreaterThan(100);
    expect(drawn).toBeLessThanOrEqual(1400);
    await page
      .locator('.chart', { has: page.locator('h3', { hasText: 'Accuracy' }) })
      .locator('canvas')
      .waitFor();
    await page.getByText('● live').waitFor();

    // A reload would lose this mark.
    await page.evaluate('window.notReloaded = true');
    const logged = await postJson(`${api.url}/v1/runs/${externalId}/metrics`, {
      points: [{ name: 'val/accuracy', step: 20_999, value: 0.97 }],
    });
    expect(logged.json.inserted).toBe(1);
    const accuracy = page.locator('.chart', { has: page.locator('h3', { hasText: 'Accuracy' }) });
    await expect.poll(() => accuracy.getAttribute('data-points'), { timeout: 10_000 }).toBe('21');
    // The header's best val accuracy follows the new best.
    await expect.poll(() => page.locator('#meta').textContent()).toMatch(/best val acc\. 0\.970/);
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    await page.screenshot({ path: path.join(OUTPUT, 'run-page.png'), fullPage: true });
  });

  it('compares runs, one line each, and grows a run that logs meanwhile', async () => {
    const other = (
      await postJson(`${api.url}/v1/runs`, { kind: 'external', name: 'other-run', config: {} })
    ).json.id as string;
    await postJson(`${api.url}/v1/runs/${other}/metrics`, {
      points: Array.from({ length: 5 }, (_, i) => ({
        name: 'val/accuracy',
        step: i * 1000 + 999,
        value: 0.2 + 0.1 * i,
      })),
    });
    await page.goto(`${api.url}/compare?runs=${externalId},${other}`);
    const chart = page.locator('.chart', { has: page.locator('h3', { hasText: 'val/accuracy' }) });
    await chart.locator('canvas').waitFor();
    // notebook-run's 21 points and other-run's 5, a line each.
    await expect.poll(() => chart.getAttribute('data-points')).toBe('26');
    expect(await chart.locator('.u-legend').textContent()).toMatch(/notebook-run.*other-run/s);
    await page.evaluate('window.notReloaded = true');
    await postJson(`${api.url}/v1/runs/${other}/metrics`, {
      points: [{ name: 'val/accuracy', step: 5999, value: 0.75 }],
    });
    await expect.poll(() => chart.getAttribute('data-points'), { timeout: 10_000 }).toBe('27');
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    await page.screenshot({ path: path.join(OUTPUT, 'compare.png'), fullPage: true });
  });

  it('cancels a queued run from its page', async () => {
    const submitted = await postJson(`${api.url}/v1/runs`, trainBody({ name: 'to-cancel' }));
    const id = submitted.json.id as string;
    await page.goto(`${api.url}/runs/${id}`);
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await expect
      .poll(() => page.locator('#meta .status').textContent(), { timeout: 10_000 })
      .toBe('cancelled');
    expect((await db.prisma.run.findUniqueOrThrow({ where: { id } })).status).toBe('cancelled');
    expect(await queue.queue.getJob(id)).toBeUndefined();
    await page.screenshot({ path: path.join(OUTPUT, 'run-cancelled.png'), fullPage: true });
  });

  it("shows an eval run's scores, per-class figures and confusion matrix", async () => {
    const trained = await db.prisma.run.create({
      data: { kind: 'train', name: 'trained', status: 'succeeded', config: {} },
    });
    const evaluated = await db.prisma.run.create({
      data: {
        kind: 'eval',
        name: 'eval-of-trained',
        status: 'succeeded',
        config: { checkpoint: { runId: trained.id, step: 40 } },
        result: {
          top1: 0.75,
          top5: 1,
          loss: 0.61,
          count: 8,
          backend: 'wasm',
          perClass: [
            { label: 'cat', precision: 1, recall: 0.5, count: 4 },
            { label: 'dog', precision: 2 / 3, recall: 1, count: 4 },
          ],
          confusionMatrix: [
            [2, 2],
            [0, 4],
          ],
        },
      },
    });
    await page.goto(`${api.url}/runs/${evaluated.id}`);
    const summary = page.locator('#eval-summary');
    await summary.waitFor();
    expect(await summary.textContent()).toMatch(
      /top-1 75\.0%\s+top-5 100\.0%\s+loss 0\.6100\s+images 8/,
    );
    expect(await page.locator('#eval-per-class tbody tr').allTextContents()).toEqual([
      expect.stringMatching(/cat\s*4\s*100\.0%\s*50\.0%/),
      expect.stringMatching(/dog\s*4\s*66\.7%\s*100\.0%/),
    ]);
    // Half the cats taken for dogs: a red cell; the dogs all right: a green one.
    const cell = (row: number, column: number) =>
      page.locator(`#eval-confusion tbody tr:nth-child(${row}) td:nth-of-type(${column})`);
    expect(await cell(1, 2).textContent()).toBe('2');
    expect(await cell(1, 2).getAttribute('style')).toMatch(/rgba\(201, 58, 58, 0\.57\)/);
    expect(await cell(2, 2).getAttribute('style')).toMatch(/rgba\(29, 138, 78, 1\.00\)/);
    expect(await cell(2, 1).getAttribute('style')).toBeNull();
    await page.locator('#eval a', { hasText: `run ${trained.id.slice(0, 8)}` }).click();
    await page.waitForURL(`${api.url}/runs/${trained.id}`);
    await page.goBack();
    await summary.waitFor();
    await page.screenshot({ path: path.join(OUTPUT, 'eval-run.png'), fullPage: true });
  });

  it('shows the API validation messages of a refused submission', async () => {
    await page.goto(`${api.url}/`);
    await page.locator('#spec').fill(JSON.stringify(trainBody({ train: { epochs: 0 } })));
    await page.getByRole('button', { name: 'Submit' }).click();
    await page.locator('#problems li', { hasText: 'body.train' }).first().waitFor();
    expect(await page.locator('#problems').textContent()).toMatch(/Invalid request/);
  });

  it('asks for a key once on a wrong one, instead of retrying its event stream every second', async () => {
    const streamRequests: string[] = [];
    const count = (request: { url(): string }) => {
      if (request.url().includes('/v1/events')) streamRequests.push(request.url());
    };
    page.on('request', count);
    try {
      await page.goto('about:blank'); // a new document, not a fragment change
      await page.goto(`${api.url}/#token=gq_${'x'.repeat(43)}`);
      await page.locator('#key-dialog[open]').waitFor();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // One attempt: a wrong key would otherwise count against the address's failed-key limit.
      expect(streamRequests).toHaveLength(1);
    } finally {
      page.off('request', count);
    }
    await page.locator('#key-input').fill(api.key);
    await page.locator('#key-save').click();
    await page.getByText('● live').waitFor();
  });
});
