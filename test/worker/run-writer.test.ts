/**
 * The write queue's own contract, with a store function that fails on command (the outage
 * itself is exercised against a real PostgreSQL restart in test/faults/service-restarts).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { MetricPointMessage } from '../../src/worker/ipc.js';
import { LeaseLostError } from '../../src/runs/lease.js';
import { SeriesLimitError } from '../../src/db/metric-series.js';
import { RunWriter, WriteGaveUpError } from '../../src/worker/run-writer.js';

const log = pino({ level: 'silent' });
const points = (from: number, n: number): MetricPointMessage[] =>
  Array.from({ length: n }, (_, i) => ({ name: 'train/loss', step: from + i, value: 1, time: 0 }));

function writer(overrides: Partial<ConstructorParameters<typeof RunWriter>[0]> = {}) {
  const stored: number[] = [];
  const order: string[] = [];
  const pauses: boolean[] = [];
  let down = false;
  let fatal: Error | undefined;
  const w = new RunWriter({
    log,
    writeMetrics: async (batch) => {
      if (down) throw new Error('connection refused');
      stored.push(...batch.map((p) => p.step));
      order.push(`metrics ${batch.length}`);
    },
    maxBufferedPoints: 100,
    giveUpAfterMs: 60_000,
    onBackpressure: (paused) => pauses.push(paused),
    onFatal: (error) => (fatal = error),
    ...overrides,
  });
  return {
    w,
    stored,
    order,
    pauses,
    setDown: (value: boolean) => (down = value),
    fatal: () => fatal,
  };
}

describe('run writer', () => {
  it('holds metrics through an outage, pauses training past the bound, and writes each point once, in order', async () => {
    const t = writer();
    t.setDown(true);
    t.w.metrics(points(0, 60));
    t.w.push('checkpoint', async () => t.order.push('checkpoint'));
    t.w.metrics(points(60, 60)); // 120 waiting > 100: pause
    expect(t.pauses).toEqual([true]);
    expect(t.w.backlog).toBe(120);
    await new Promise((r) => setTimeout(r, 300));
    t.setDown(false);
    await t.w.drain();
    expect(t.pauses).toEqual([true, false]);
    expect(t.stored).toEqual(Array.from({ length: 120 }, (_, i) => i));
    // The checkpoint row after the metrics before it; later points after the checkpoint.
    expect(t.order).toEqual(['metrics 60', 'checkpoint', 'metrics 60']);
    expect(t.w.backlog).toBe(0);
  });

  it('merges consecutive metric batches into one insert', async () => {
    const t = writer();
    t.setDown(true);
    for (let i = 0; i < 5; i++) t.w.metrics(points(i * 10, 10));
    t.setDown(false);
    await t.w.drain();
    // The first batch was in flight (and failing) when the others came; they went together.
    expect(t.order).toEqual(['metrics 10', 'metrics 40']);
  });

  it('gives up after the limit, and stops at once when the lease is lost', async () => {
    const slow = writer({ giveUpAfterMs: 300 });
    slow.setDown(true);
    slow.w.metrics(points(0, 1));
    await expect(slow.w.drain()).rejects.toBeInstanceOf(WriteGaveUpError);
    expect(slow.fatal()).toBeInstanceOf(WriteGaveUpError);

    const fenced = writer();
    let after = false;
    fenced.w.push('progress', async () => {
      throw new LeaseLostError('r1');
    });
    fenced.w.push('status', async () => {
      after = true;
    });
    await expect(fenced.w.drain()).rejects.toBeInstanceOf(LeaseLostError);
    expect(after).toBe(false); // nothing after a lost lease is written
  });

  it('stops at once, without retrying, when a metric batch passes the run series cap', async () => {
    let tries = 0;
    const capped = writer({
      writeMetrics: async () => {
        tries++;
        throw new SeriesLimitError('r1', 1000, 1000, 1);
      },
    });
    capped.w.metrics(points(0, 1));
    await expect(capped.w.drain()).rejects.toBeInstanceOf(SeriesLimitError);
    expect(tries).toBe(1);
    expect(capped.fatal()?.message).toMatch(/METRICS_MAX_SERIES_PER_RUN/);
  });
});
