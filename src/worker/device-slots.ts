/**
 * A worker's device slots: one per GPU, or a configured number of CPU slots. Each job trains in
 * a slot; its child process sees only the slot's GPU (CUDA_VISIBLE_DEVICES), and CPU slots split
 * the machine's cores between them.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import type { Config } from '../config.js';

export interface DeviceSlot {
  /** `gpu:<index>` or `cpu:<n>`, recorded on the run. */
  id: string;
  /** Environment for the training child. */
  env: Record<string, string>;
  /** wasm threads for the child (CPU slots share the cores). */
  threads?: number;
}

/** GPU indices nvidia-smi reports, or none when it is missing or fails. */
export function detectGpus(): number[] {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
  } catch {
    return [];
  }
}

export function planSlots(
  config: Pick<Config, 'WORKER_GPUS' | 'WORKER_CONCURRENCY' | 'TRAIN_BACKEND' | 'TRAIN_THREADS'>,
  options: { detectGpus?: () => number[]; cpus?: number } = {},
): DeviceSlot[] {
  const mayUseGpu = config.TRAIN_BACKEND === 'auto' || config.TRAIN_BACKEND === 'tfjs-node-gpu';
  let gpus: number[] = [];
  if (config.WORKER_GPUS === 'auto') {
    if (mayUseGpu) gpus = (options.detectGpus ?? detectGpus)();
  } else if (config.WORKER_GPUS !== 'none') {
    gpus = config.WORKER_GPUS.split(',').map(Number);
  }
  if (gpus.length > 0) {
    return gpus.map((index) => ({
      id: `gpu:${index}`,
      env: { CUDA_VISIBLE_DEVICES: String(index) },
      ...(config.TRAIN_THREADS !== undefined ? { threads: config.TRAIN_THREADS } : {}),
    }));
  }
  const cpus = options.cpus ?? os.availableParallelism();
  const threads = config.TRAIN_THREADS ?? Math.max(1, Math.floor(cpus / config.WORKER_CONCURRENCY));
  return Array.from({ length: config.WORKER_CONCURRENCY }, (_, n) => ({
    id: `cpu:${n}`,
    // No GPU for a CPU slot, even if a GPU build of TensorFlow is installed.
    env: { CUDA_VISIBLE_DEVICES: '' },
    threads,
  }));
}

/** Free slots; BullMQ's concurrency equals the slot count, so a job always finds one. */
export class SlotPool {
  private readonly free: DeviceSlot[];

  constructor(readonly slots: DeviceSlot[]) {
    this.free = [...slots];
  }

  acquire(): DeviceSlot {
    const slot = this.free.shift();
    if (!slot) throw new Error('no free device slot (concurrency exceeds the slot count)');
    return slot;
  }

  release(slot: DeviceSlot): void {
    if (!this.free.includes(slot)) this.free.push(slot);
  }
}
