import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, loadBackend } from '../../src/model/backend.js';

const require = createRequire(import.meta.url);
function installed(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

describe('backend selection', () => {
  it('auto takes the first backend that loads, logs it and says why faster ones were skipped', async () => {
    const logs: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const logger = {
      info: (obj: object, msg: string) => logs.push({ obj: obj as Record<string, unknown>, msg }),
      warn: (obj: object, msg: string) => logs.push({ obj: obj as Record<string, unknown>, msg }),
    };
    const loaded = await loadBackend({ backend: 'auto', threads: 1, logger });
    const expected =
      installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node')
        ? 'tensorflow'
        : 'wasm';
    expect(loaded.tfBackend).toBe(expected);
    expect(tf.getBackend()).toBe(expected);
    expect(loaded.threads).toBeGreaterThanOrEqual(1);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.msg).toBe(`compute backend: ${loaded.name}`);
    if (expected === 'wasm') {
      expect(Object.keys(logs[0]!.obj['skipped'] as object)).toEqual([
        'tfjs-node-gpu',
        'tfjs-node',
      ]);
    }
  });

  it('a forced backend that cannot load fails with an error naming it', async () => {
    if (installed('@tensorflow/tfjs-node')) {
      // On machines where libtensorflow installed, forcing it must work instead.
      await expect(loadBackend({ backend: 'tfjs-node' })).resolves.toMatchObject({
        tfBackend: 'tensorflow',
      });
      return;
    }
    const error = await loadBackend({ backend: 'tfjs-node' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toMatch(/TRAIN_BACKEND=tfjs-node .*cannot be loaded/);
  });

  it('a forced backend that loads is the one used', async () => {
    await expect(loadBackend({ backend: 'cpu' })).resolves.toMatchObject({
      name: 'cpu',
      tfBackend: 'cpu',
      threads: 1,
    });
    expect(tf.getBackend()).toBe('cpu');
  });
});
