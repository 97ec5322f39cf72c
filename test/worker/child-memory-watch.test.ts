import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryDeath, watchChildMemory } from '../../src/worker/child-memory-watch.js';
import { cgroupMemoryLimit, hostMemoryBytes, oomKillCount } from '../../src/worker/host-memory.js';

const MiB = 2 ** 20;
const death = (over: Partial<Parameters<typeof memoryDeath>[0]>) =>
  memoryDeath({
    signal: 'SIGKILL',
    exceededLimit: false,
    killedByParent: false,
    peakBytes: 100 * MiB,
    limitBytes: 1000 * MiB,
    oomKills: { before: 0, after: 0 },
    ...over,
  });

describe('memoryDeath', () => {
  it('names the limit when the watch killed the child', () => {
    expect(death({ exceededLimit: true, peakBytes: 1001 * MiB })).toEqual({
      cause: 'limit',
      peakBytes: 1001 * MiB,
      limitBytes: 1000 * MiB,
    });
  });

  it("blames the OOM killer for a SIGKILL nobody here sent when the cgroup's count rose, or at the edge of the limit", () => {
    expect(death({ oomKills: { before: 2, after: 3 } })?.cause).toBe('oom-killer');
    expect(
      death({ peakBytes: 950 * MiB, oomKills: { before: undefined, after: undefined } })?.cause,
    ).toBe('oom-killer');
  });

  it('leaves other deaths to the retry: a kill -9 by hand, the parent’s own kills, other signals', () => {
    expect(death({})).toBeUndefined();
    expect(death({ killedByParent: true, oomKills: { before: 0, after: 1 } })).toBeUndefined();
    expect(death({ signal: 'SIGSEGV', peakBytes: 990 * MiB })).toBeUndefined();
    expect(death({ signal: null })).toBeUndefined();
  });
});

describe('host memory', () => {
  it('reads a cgroup v2 or v1 limit and OOM-kill count, and ignores "max" and v1\'s no-limit value', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'gq-cgroup-'));
    try {
      expect(cgroupMemoryLimit(root)).toBeUndefined();
      expect(oomKillCount(root)).toBeUndefined();
      expect(hostMemoryBytes(root)).toBe(os.totalmem());
      await writeFile(path.join(root, 'memory.max'), 'max\n');
      expect(cgroupMemoryLimit(root)).toBeUndefined();
      await mkdir(path.join(root, 'memory'));
      await writeFile(path.join(root, 'memory', 'memory.limit_in_bytes'), '9223372036854771712\n');
      expect(cgroupMemoryLimit(root)).toBeUndefined();
      await writeFile(path.join(root, 'memory.max'), `${512 * MiB}\n`);
      await writeFile(
        path.join(root, 'memory.events'),
        'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n',
      );
      expect(cgroupMemoryLimit(root)).toBe(512 * MiB);
      expect(hostMemoryBytes(root)).toBe(Math.min(512 * MiB, os.totalmem()));
      expect(oomKillCount(root)).toBe(2);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('watchChildMemory', () => {
  it('kills a process once its resident set passes the limit, and records its peak', async () => {
    // A process that keeps touching new memory until it is killed.
    const hog = spawn(process.execPath, [
      '-e',
      'const a = []; setInterval(() => a.push(Buffer.alloc(8 * 2 ** 20, 1)), 20);',
    ]);
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      hog.once('exit', (_code, signal) => resolve(signal)),
    );
    const watch = watchChildMemory(hog.pid!, 120 * MiB, () => hog.kill('SIGKILL'), 50);
    const timeout = setTimeout(() => hog.kill('SIGTERM'), 20_000);
    const signal = await exited;
    clearTimeout(timeout);
    watch.stop();
    expect(signal).toBe('SIGKILL');
    expect(watch.exceeded()).toBe(true);
    expect(watch.peakBytes()).toBeGreaterThan(120 * MiB);
  });
});
