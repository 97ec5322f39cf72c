/**
 * Is the run page smooth on a run with a million points per series? The real API (child
 * process), the real page in Debian's headless Chromium:
 *
 *   npm run bench:dashboard -- [--points 1000000] [--live-seconds 10] [--json]
 *
 * 1. An external run gets --points points of `train/loss` and of `train/lr` (through the API,
 *    batches of 10,000), and one `val/accuracy` point per 1,000 steps.
 * 2. Load: from navigation to both big charts drawn.
 * 3. Zoom: a drag over 1% of the loss chart (buckets again), then a drag over 8 pixels of that (the page ignores drags under 5)
 *    (exact points, checked against what was sent), then a double-click back to the whole run;
 *    each from mouse-up to the chart redrawn.
 * 4. Live: a point of each big series posted every 100 ms for --live-seconds; for each, the time
 *    from the POST to the page drawing it, and meanwhile the page's frames (requestAnimationFrame
 *    gaps) and long tasks (> 50 ms, PerformanceObserver).
 * 5. The page's JS heap at the end.
 */
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/chromium.js';
import { startBenchApi } from './api-process.js';
import { median, percentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    points: { type: 'string', default: '1000000' },
    'live-seconds': { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});
const POINTS = Number(args.points);
const LIVE_SECONDS = Number(args['live-seconds']);
const BATCH = 10_000;
const log = (line: string): void => {
  if (!args.json) process.stdout.write(`${line}\n`);
};

const loss = (step: number) => 2.5 / (1 + step / 50_000) + 0.05 * Math.sin(step / 7);
const lr = (step: number) => 0.01 * 0.5 * (1 + Math.cos((Math.PI * step) / POINTS));

const api = await startBenchApi('dashboard');
const browser = await launchChromium();
try {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${api.base}${path}`, {
      method: 'POST',
      headers: api.headers,
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<{ id: string }>;
  };
  const { id } = await post('/v1/runs', { kind: 'external', name: 'a-million-points' });

  log(`logging ${POINTS.toLocaleString()} points of train/loss and of train/lr...`);
  const ingestStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 2 }, async () => {
      for (;;) {
        const start = next;
        next += BATCH / 2;
        if (start >= POINTS) return;
        const points = [];
        for (let step = start; step < Math.min(POINTS, start + BATCH / 2); step++) {
          points.push({ name: 'train/loss', step, value: loss(step) });
          points.push({ name: 'train/lr', step, value: lr(step) });
        }
        await post(`/v1/runs/${id}/metrics`, { points });
      }
    }),
  );
  await post(`/v1/runs/${id}/metrics`, {
    points: Array.from({ length: Math.floor(POINTS / 1000) }, (_, i) => ({
      name: 'val/accuracy',
      step: i * 1000 + 999,
      value: 0.3 + 0.6 * (1 - Math.exp(-i / 200)),
    })).slice(0, 10_000),
  });
  log(`  logged in ${((performance.now() - ingestStart) / 1000).toFixed(1)} s`);

  // bypassCSP: the API's Content-Security-Policy forbids eval, which waitForFunction's string
  // predicates use; the page's own scripts run under the policy as for any user.
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, bypassCSP: true });
  page.on('pageerror', (error) => process.stderr.write(`page error: ${error}\n`));
  const chart = (title: string) =>
    page.locator('.chart', { has: page.locator('h3', { hasText: new RegExp(`^${title}$`) }) });
  const drawnAttr = (title: string, attr: string) => chart(title).getAttribute(attr);

  // 2. Load.
  const loadStart = performance.now();
  await page.goto(`${api.base}/runs/${id}#token=${api.apiKey}`);
  await page.waitForFunction(
    `${chartAttr('Loss', 'data-points')} > 0 && ${chartAttr('Learning rate', 'data-points')} > 0`,
  );
  const loadMs = performance.now() - loadStart;
  const bucketsDrawn = Number(await drawnAttr('Loss', 'data-points'));
  log(
    `load: both charts drawn ${loadMs.toFixed(0)} ms after navigation (loss: ${bucketsDrawn} buckets)`,
  );

  // 3. Zoom: drag over part of the loss chart's plotting area, wait for its redraw.
  async function drag(fromFraction: number, toFraction: number) {
    const box = (await chart('Loss').locator('.u-over').boundingBox())!;
    const y = box.y + box.height / 2;
    const answered = page.waitForResponse(
      (r) => r.url().includes('/v1/metrics?') && r.url().includes('fromStep'),
    );
    await page.mouse.move(box.x + box.width * fromFraction, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * toFraction, y, { steps: 4 });
    const start = performance.now();
    await page.mouse.up();
    const response = await answered;
    const body = (await response.json()) as {
      runs: Array<{
        series: Array<{ points: Array<{ step: number; value: number; min?: number }> }>;
      }>;
    };
    const points = body.runs[0]!.series[0]!.points;
    // Drawn: the chart shows exactly the answer's points.
    await page.waitForFunction(
      `${chartAttr('Loss', 'data-points')} === ${points.length} && ${chartAttr('Loss', 'data-last-step')} === ${points.at(-1)?.step ?? -1}`,
    );
    return { ms: performance.now() - start, points };
  }
  const zoom1 = await drag(0.4, 0.41);
  const zoom2 = await drag(
    0.5,
    0.5 + 8 / (await chart('Loss').locator('.u-over').boundingBox())!.width,
  );
  const exact =
    zoom2.points.length > 0 &&
    zoom2.points.every((p) => p.min === undefined && p.value === loss(p.step));
  const resetStart = performance.now();
  const beforeReset = await drawnAttr('Loss', 'data-points');
  // The whole run again: bucketed, so not the zoom's handful of exact points.
  await chart('Loss').locator('.u-over').dblclick();
  await page.waitForFunction(`${chartAttr('Loss', 'data-points')} !== ${Number(beforeReset)}`);
  const resetMs = performance.now() - resetStart;
  log(
    `zoom: 1% of the run ${zoom1.ms.toFixed(0)} ms (${zoom1.points.length} ${zoom1.points.some((p) => p.min !== undefined) ? 'buckets' : 'exact points'}); 8 px of that ${zoom2.ms.toFixed(0)} ms (${zoom2.points.length} points, exact stored values: ${exact ? 'yes' : 'NO'}); reset ${resetMs.toFixed(0)} ms`,
  );

  // 4. Live: frames and long tasks while points stream in.
  await page.evaluate(`(() => {
    window.frames_ = [];
    window.longTasks_ = [];
    window.stopFrames_ = false;
    const tick = (t) => {
      window.frames_.push(t);
      if (!window.stopFrames_) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.longTasks_.push(e.duration);
    }).observe({ type: 'longtask' });
  })()`);
  const latencies: number[] = [];
  const live = POINTS;
  const total = Math.round(LIVE_SECONDS * 10);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const step = live + i;
    const sent = performance.now();
    await post(`/v1/runs/${id}/metrics`, {
      points: [
        { name: 'train/loss', step, value: loss(step) },
        { name: 'train/lr', step, value: lr(step) },
      ],
    });
    pending.push(
      waitForStep(page, step).then(() => {
        latencies.push(performance.now() - sent);
      }),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (performance.now() - sent))));
  }
  await Promise.all(pending);
  const { frames, longTasks, heap } = await page.evaluate<{
    frames: number[];
    longTasks: number[];
    heap: number;
  }>(`(() => {
    window.stopFrames_ = true;
    return {
      frames: window.frames_,
      longTasks: window.longTasks_,
      heap: performance.memory ? performance.memory.usedJSHeapSize : NaN,
    };
  })()`);
  const gaps = frames.slice(1).map((t, i) => t - frames[i]!);
  log(
    `live: ${total} points per series over ${LIVE_SECONDS} s, posted to drawn p50 ${median(latencies).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms`,
  );
  log(
    `frames meanwhile: ${frames.length}, gap p50 ${median(gaps).toFixed(1)} ms, p95 ${percentile(gaps, 95).toFixed(1)} ms, max ${Math.max(...gaps).toFixed(0)} ms; long tasks (> 50 ms): ${longTasks.length}${longTasks.length ? `, longest ${Math.max(...longTasks).toFixed(0)} ms` : ''}`,
  );
  log(`page JS heap: ${(heap / 1e6).toFixed(1)} MB`);

  if (args.json)
    process.stdout.write(
      `${JSON.stringify({
        points: POINTS,
        loadMs,
        bucketsDrawn,
        zoom: { bucketsMs: zoom1.ms, exactMs: zoom2.ms, exact, resetMs },
        live: {
          points: total,
          p50Ms: median(latencies),
          p95Ms: percentile(latencies, 95),
          frameGapP50Ms: median(gaps),
          frameGapP95Ms: percentile(gaps, 95),
          frameGapMaxMs: Math.max(...gaps),
          longTasks: longTasks.length,
        },
        heapBytes: heap,
      })}\n`,
    );
} finally {
  await browser.close();
  await api.stop();
}

/**
 * In-page JavaScript (a string: this file is type-checked without the DOM) that reads an
 * attribute of the chart titled `title` as a number or string.
 */
function chartAttr(title: string, attr: string): string {
  const read = `[...document.querySelectorAll('.chart')].find((c) => c.querySelector('h3')?.textContent === ${JSON.stringify(title)})?.getAttribute(${JSON.stringify(attr)})`;
  return attr === 'data-points' || attr === 'data-last-step' ? `Number(${read} ?? -1)` : read;
}

/** Resolves when the loss chart has drawn up to `step`. */
async function waitForStep(page: Page, step: number): Promise<void> {
  await page.waitForFunction(`${chartAttr('Loss', 'data-last-step')} >= ${step}`, undefined, {
    polling: 'raf',
    timeout: 30_000,
  });
}
