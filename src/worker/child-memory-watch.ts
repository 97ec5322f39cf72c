/**
 * The parent's watch over a child's memory. Training memory is mostly outside V8's heap (the
 * wasm backend's WebAssembly memory, native tensors), so `--max-old-space-size` cannot bound
 * it, and an address-space rlimit would break WebAssembly's reservations. Instead the parent
 * reads the child's resident set (`/proc/<pid>/status`) a few times a second and kills it the
 * moment it passes its limit, before the kernel's OOM killer has to pick a victim on the host.
 * On systems without /proc nothing is read and only the kernel's limits apply.
 *
 * When a child dies, `memoryDeath` says whether memory killed it: the watch's own kill, or a
 * SIGKILL the parent did not send while the cgroup's OOM-kill count rose or the child was at
 * the edge of its limit.
 */
import { readFileSync } from 'node:fs';
import { oomKillCount } from './host-memory.js';

/** How often a child's memory is read. */
const SAMPLE_EVERY_MS = 250;

/** A child this close to its limit and killed by a SIGKILL nobody here sent: the OOM killer. */
const NEAR_LIMIT = 0.9;

/** Resident and peak resident bytes of `pid`, or undefined when it cannot be read. */
export function residentBytes(pid: number): { rss: number; peak: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kB = (field: string): number =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kB('VmRSS'), peak: kB('VmHWM') };
}

export interface ChildMemoryWatch {
  /** The highest resident set seen so far. */
  peakBytes(): number;
  /** True once the child passed its limit (and was killed for it). */
  exceeded(): boolean;
  stop(): void;
}

/** Reads `pid`'s memory until stopped; past `limitBytes`, calls `kill` once. */
export function watchChildMemory(
  pid: number,
  limitBytes: number,
  kill: () => void,
  everyMs = SAMPLE_EVERY_MS,
): ChildMemoryWatch {
  let peak = 0;
  let exceeded = false;
  const sample = (): void => {
    const memory = residentBytes(pid);
    if (!memory) return;
    peak = Math.max(peak, memory.peak, memory.rss);
    if (!exceeded && memory.rss > limitBytes) {
      exceeded = true;
      kill();
    }
  };
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    peakBytes: () => peak,
    exceeded: () => exceeded,
    stop: () => clearInterval(timer),
  };
}

/** Why memory ended a child: its limit here, or the kernel's OOM killer. */
export interface MemoryDeath {
  cause: 'limit' | 'oom-killer';
  peakBytes: number;
  limitBytes: number;
}

/** Whether memory killed a child that exited with `signal`; undefined when something else did. */
export function memoryDeath(death: {
  signal: NodeJS.Signals | null;
  /** The watch killed it for its limit. */
  exceededLimit: boolean;
  /** The parent sent a SIGKILL of its own (lost lease, shutdown or cancel grace). */
  killedByParent: boolean;
  peakBytes: number;
  limitBytes: number;
  /** The cgroup's OOM-kill count when the child started and when it died. */
  oomKills: { before: number | undefined; after: number | undefined };
}): MemoryDeath | undefined {
  const { peakBytes, limitBytes } = death;
  if (death.exceededLimit) return { cause: 'limit', peakBytes, limitBytes };
  if (death.signal !== 'SIGKILL' || death.killedByParent) return undefined;
  const { before, after } = death.oomKills;
  const oomKilled = before !== undefined && after !== undefined && after > before;
  if (oomKilled || peakBytes >= NEAR_LIMIT * limitBytes)
    return { cause: 'oom-killer', peakBytes, limitBytes };
  return undefined;
}

/** A child's memory watch, and the verdict on its death when it exits. */
export interface ChildMemoryGuard {
  /** Whether memory killed the child that exited with `signal`. */
  verdict(signal: NodeJS.Signals | null, killedByParent: boolean): MemoryDeath | undefined;
  stop(): void;
}

/** Watches `pid` against `limitBytes` (killing it past the limit) from its start to its death. */
export function guardChildMemory(
  pid: number,
  limitBytes: number,
  kill: () => void,
): ChildMemoryGuard {
  const before = oomKillCount();
  const watch = watchChildMemory(pid, limitBytes, kill);
  return {
    verdict: (signal, killedByParent) =>
      memoryDeath({
        signal,
        exceededLimit: watch.exceeded(),
        killedByParent,
        peakBytes: watch.peakBytes(),
        limitBytes,
        oomKills: { before, after: oomKillCount() },
      }),
    stop: () => watch.stop(),
  };
}
