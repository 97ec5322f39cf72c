import { describe, expect, it } from 'vitest';
import { planSlots, SlotPool } from '../../src/worker/device-slots.js';

const base = { WORKER_CONCURRENCY: 1, TRAIN_BACKEND: 'auto', TRAIN_THREADS: undefined } as const;

describe('device slots', () => {
  it('gives each detected GPU a slot whose child sees only that GPU', () => {
    const slots = planSlots({ ...base, WORKER_GPUS: 'auto' }, { detectGpus: () => [0, 1, 2] });
    expect(slots.map((s) => [s.id, s.env.CUDA_VISIBLE_DEVICES])).toEqual([
      ['gpu:0', '0'],
      ['gpu:1', '1'],
      ['gpu:2', '2'],
    ]);
  });

  it('takes a configured GPU list as it is, and looks for none on a CPU-only backend', () => {
    expect(planSlots({ ...base, WORKER_GPUS: '3,5' }).map((s) => s.id)).toEqual(['gpu:3', 'gpu:5']);
    let asked = false;
    const slots = planSlots(
      { ...base, TRAIN_BACKEND: 'wasm', WORKER_GPUS: 'auto', WORKER_CONCURRENCY: 2 },
      { detectGpus: () => ((asked = true), [0]), cpus: 8 },
    );
    expect(asked).toBe(false);
    expect(slots.map((s) => [s.id, s.env.CUDA_VISIBLE_DEVICES, s.threads])).toEqual([
      ['cpu:0', '', 4],
      ['cpu:1', '', 4],
    ]);
  });

  it('falls back to CPU slots that share the cores when no GPU is found', () => {
    const slots = planSlots(
      { ...base, WORKER_GPUS: 'auto', WORKER_CONCURRENCY: 3 },
      { detectGpus: () => [], cpus: 2 },
    );
    expect(slots.map((s) => [s.id, s.threads])).toEqual([
      ['cpu:0', 1],
      ['cpu:1', 1],
      ['cpu:2', 1],
    ]);
  });

  it('hands out each slot to one job at a time', () => {
    const pool = new SlotPool(planSlots({ ...base, WORKER_GPUS: '0,1' }));
    const a = pool.acquire();
    const b = pool.acquire();
    expect([a.id, b.id]).toEqual(['gpu:0', 'gpu:1']);
    expect(() => pool.acquire()).toThrow(/no free device slot/);
    pool.release(a);
    expect(pool.acquire().id).toBe('gpu:0');
  });
});
