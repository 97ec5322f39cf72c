/**
 * The GPU self-check on a machine without a GPU: it must fail, and say why. Its success path
 * needs an NVIDIA GPU, which our machines lack; a stand-in `nvidia-smi` (a script printing what
 * the real one prints for an H100) drives the checks that follow the driver's.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(path.join(tmpdir(), 'gq-gpu-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function gpuCheck(pathDirs: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/worker/gpu-check.ts', '--steps', '2'],
    {
      encoding: 'utf8',
      env: { PATH: pathDirs.join(':'), HOME: process.env.HOME },
      timeout: 60_000,
    },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('gpu-check', () => {
  it('fails naming the NVIDIA Container Toolkit when no driver is visible', () => {
    const result = gpuCheck([path.join(dir, 'empty')]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('no NVIDIA driver is visible in this container');
    expect(result.stderr).toContain('NVIDIA Container Toolkit');
  });

  it('lists the GPUs, warns about Hopper, and fails naming the missing tfjs-node-gpu', () => {
    const bin = path.join(dir, 'bin');
    spawnSync('mkdir', ['-p', bin]);
    const fake = path.join(bin, 'nvidia-smi');
    writeFileSync(fake, '#!/bin/sh\necho "0, NVIDIA H100 80GB HBM3, 9.0, 550.54.15, 81559 MiB"\n');
    chmodSync(fake, 0o755);
    const result = gpuCheck([bin, '/usr/bin', '/bin']);
    expect(result.stdout).toContain('driver: 1 GPU(s) visible');
    expect(result.stdout).toContain('NVIDIA H100 80GB HBM3');
    expect(result.stdout).toContain('compute capability 9.x (Hopper)');
    expect(result.status).toBe(1);
    // Here tfjs-node-gpu cannot be installed (its libtensorflow download fails).
    expect(result.stderr).toContain('tfjs-node-gpu is not installed in this image');
  });
});
