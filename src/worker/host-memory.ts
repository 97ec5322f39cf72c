/**
 * What this host (or container) lets its processes use, from the kernel: the memory cgroup's
 * limit when there is one (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`, as a container
 * sees its own cgroup at /sys/fs/cgroup), else the machine's total memory; and how many
 * processes the kernel's OOM killer has killed in that cgroup, so a child that died by SIGKILL
 * can be told apart from one killed by hand.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

const CGROUP = '/sys/fs/cgroup';

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** v1 reports "no limit" as a number near 2^63; anything past 2^60 bytes means none. */
const NO_LIMIT = 2 ** 60;

/** The cgroup's memory limit in bytes, or undefined when it has none (or none is readable). */
export function cgroupMemoryLimit(root = CGROUP): number | undefined {
  for (const file of [`${root}/memory.max`, `${root}/memory/memory.limit_in_bytes`]) {
    const text = read(file)?.trim();
    if (text === undefined || !/^\d+$/.test(text)) continue;
    const bytes = Number(text);
    if (bytes > 0 && bytes < NO_LIMIT) return bytes;
  }
  return undefined;
}

/** Memory this host's processes may use: the cgroup limit, else the machine's memory. */
export function hostMemoryBytes(root = CGROUP): number {
  return Math.min(cgroupMemoryLimit(root) ?? Number.POSITIVE_INFINITY, os.totalmem());
}

/** Processes the OOM killer has killed in this cgroup so far; undefined when not readable. */
export function oomKillCount(root = CGROUP): number | undefined {
  for (const file of [`${root}/memory.events`, `${root}/memory/memory.oom_control`]) {
    const match = /^oom_kill (\d+)$/m.exec(read(file) ?? '');
    if (match) return Number(match[1]);
  }
  return undefined;
}
