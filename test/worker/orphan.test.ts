import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('training child without its worker', () => {
  it('exits by itself within seconds when its parent dies (no orphan keeps training)', async () => {
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/parent-of-training.ts'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const childPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      parent.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const match = /child (\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
      parent.once('exit', () => reject(new Error(`parent exited early: ${out}`)));
    });
    expect(alive(childPid)).toBe(true);
    parent.kill('SIGKILL');
    const killedAt = Date.now();
    while (alive(childPid) && Date.now() - killedAt < 10_000)
      await new Promise((r) => setTimeout(r, 100));
    expect(alive(childPid)).toBe(false);
    expect(Date.now() - killedAt).toBeLessThan(5_000);
  });
});
