import { describe, expect, it } from 'vitest';
import { createModelCache, type CachedModel } from '../../src/api/models/model-cache.js';

function fakeModel(bytes: number) {
  const model = { bytes, disposed: false, dispose: () => void (model.disposed = true) };
  return model satisfies CachedModel;
}

describe('model cache', () => {
  it('keeps models within its byte bound, evicting and disposing the least recently used', async () => {
    const cache = createModelCache<ReturnType<typeof fakeModel>>(100);
    const a = fakeModel(40);
    const b = fakeModel(40);
    const c = fakeModel(40);
    await cache.use(
      'a',
      async () => a,
      () => undefined,
    );
    await cache.use(
      'b',
      async () => b,
      () => undefined,
    );
    await cache.use(
      'a',
      async () => fakeModel(40),
      () => undefined,
    ); // a is now the most recent
    await cache.use(
      'c',
      async () => c,
      () => undefined,
    );
    expect(cache.keys()).toEqual(['a', 'c']);
    expect(cache.bytes()).toBe(80);
    expect(b.disposed).toBe(true);
    expect(a.disposed || c.disposed).toBe(false);
  });

  it('loads a model once for concurrent requests, and disposes an evicted model only after its user is done', async () => {
    const cache = createModelCache<ReturnType<typeof fakeModel>>(50);
    let loads = 0;
    const big = fakeModel(40);
    const load = async () => {
      loads += 1;
      await new Promise((r) => setTimeout(r, 20));
      return big;
    };
    let release!: () => void;
    const held = cache.use('big', load, () => new Promise<void>((r) => (release = r)));
    await Promise.all([cache.use('big', load, () => undefined), cache.use('big', load, () => 1)]);
    expect(loads).toBe(1);
    await cache.use(
      'other',
      async () => fakeModel(40),
      () => undefined,
    ); // evicts big
    expect(cache.keys()).toEqual(['other']);
    expect(big.disposed).toBe(false); // still in use
    release();
    await held;
    expect(big.disposed).toBe(true);
  });

  it('forgets a failed load so the next request tries again', async () => {
    const cache = createModelCache<ReturnType<typeof fakeModel>>(50);
    await expect(
      cache.use(
        'x',
        async () => Promise.reject(new Error('store down')),
        () => undefined,
      ),
    ).rejects.toThrow('store down');
    expect(
      await cache.use(
        'x',
        async () => fakeModel(10),
        (m) => m.bytes,
      ),
    ).toBe(10);
  });
});
