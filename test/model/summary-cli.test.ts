import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

async function summary(args: string[]): Promise<{
  params: number;
  layers: Array<{ name: string; outputShape: unknown; params: number }>;
  blocks: Record<string, number>;
}> {
  const { stdout } = await run(
    'npm',
    ['run', '--silent', 'model:summary', '--', ...args, '--json'],
    { cwd: process.cwd() },
  );
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as Awaited<ReturnType<typeof summary>>;
}

describe('npm run model:summary', () => {
  it('reports 6,998,552 parameters without aux heads and 13,378,280 with them at 1000 classes, 224x224x3', async () => {
    const [plain, aux] = await Promise.all([
      summary(['--classes', '1000', '--input', '224']),
      summary(['--classes', '1000', '--input', '224', '--aux']),
    ]);
    expect(plain.params).toBe(6_998_552);
    expect(aux.params).toBe(13_378_280);
    expect(plain.layers.find((l) => l.name === 'inception5b/output')?.outputShape).toEqual([
      null,
      7,
      7,
      1024,
    ]);
    expect(aux.layers.some((l) => l.name === 'loss2/classifier')).toBe(true);
    expect(plain.layers.some((l) => l.name.startsWith('loss1/'))).toBe(false);
    // The per-layer rows add up to the total.
    expect(plain.layers.reduce((sum, l) => sum + l.params, 0)).toBe(plain.params);
  });

  it('prints a table with totals, and refuses a bad option with a message naming it', async () => {
    const { stdout } = await run('npm', [
      'run',
      '--silent',
      'model:summary',
      '--',
      '--classes',
      '10',
      '--input',
      '32',
      '--width',
      '0.25',
    ]);
    expect(stdout).toMatch(/inception4a\/3x3_reduce\s+Conv2D\s+\[N,2,2,24\]/);
    expect(stdout).toMatch(/trainable params: [\d,]+/);
    await expect(
      run('npm', ['run', '--silent', 'model:summary', '--', '--classes', '10', '--input', '8']),
    ).rejects.toMatchObject({
      stderr: expect.stringMatching(/inputSize/),
    });
  });
});
