import * as tf from '@tensorflow/tfjs-core';
import { loadBackend, type BackendName } from '../../src/model/backend.js';

/** Activates a backend (loading it the first time), single-threaded unless told otherwise. */
export async function useBackend(name: BackendName, threads = 1): Promise<void> {
  const loaded = await loadBackend({ backend: name, threads });
  if (tf.getBackend() !== loaded.tfBackend) throw new Error(`backend ${name} not active`);
}

/** max |a-b| / max |b|: error relative to the reference's scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return scale === 0 ? diff : diff / scale;
}
