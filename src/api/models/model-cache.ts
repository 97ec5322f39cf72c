/**
 * Loaded models kept in the API process, bounded by the bytes of their weights: adding one
 * evicts the least recently used until the total fits (the newest is kept even if it alone is
 * larger). Concurrent requests for a model that is still loading share one load, and a model
 * evicted while a request uses it is disposed only when that request is done.
 */
export interface CachedModel {
  /** Bytes of weights it holds (what the bound counts). */
  bytes: number;
  /** Frees its tensors. */
  dispose(): void;
}

export interface ModelCache<M extends CachedModel> {
  /** Runs `use` with the model under `key`, loading it with `load` if absent. */
  use<T>(key: string, load: () => Promise<M>, use: (model: M) => Promise<T> | T): Promise<T>;
  /** Keys currently held, least recently used first. */
  keys(): string[];
  /** Bytes currently held. */
  bytes(): number;
  /** Evicts everything (models in use are disposed when their requests end). */
  clear(): void;
}

interface Entry<M> {
  model: M;
  users: number;
  evicted: boolean;
}

export function createModelCache<M extends CachedModel>(maxBytes: number): ModelCache<M> {
  // A Map iterates in insertion order: re-inserting on use keeps the LRU entry first.
  const entries = new Map<string, Entry<M>>();
  const loading = new Map<string, Promise<Entry<M>>>();
  /** Requests waiting for each model being loaded: they are its first users. */
  const waiting = new Map<string, number>();
  let total = 0;

  function evict(key: string, entry: Entry<M>): void {
    entries.delete(key);
    total -= entry.model.bytes;
    entry.evicted = true;
    if (entry.users === 0) entry.model.dispose();
  }

  function add(key: string, model: M): Entry<M> {
    for (const [k, e] of entries) {
      if (total + model.bytes <= maxBytes) break;
      evict(k, e);
    }
    const entry = { model, users: 0, evicted: false };
    entries.set(key, entry);
    total += model.bytes;
    return entry;
  }

  /** Returns the entry already pinned for the caller, so no eviction can slip in between. */
  async function acquire(key: string, load: () => Promise<M>): Promise<Entry<M>> {
    const hit = entries.get(key);
    if (hit) {
      entries.delete(key);
      entries.set(key, hit);
      hit.users += 1;
      return hit;
    }
    waiting.set(key, (waiting.get(key) ?? 0) + 1);
    let pending = loading.get(key);
    if (!pending) {
      pending = load()
        .then((model) => {
          const entry = add(key, model);
          entry.users += waiting.get(key) ?? 0;
          return entry;
        })
        .finally(() => {
          loading.delete(key);
          waiting.delete(key);
        });
      loading.set(key, pending);
    }
    return pending;
  }

  return {
    async use(key, load, use) {
      const entry = await acquire(key, load);
      try {
        return await use(entry.model);
      } finally {
        entry.users -= 1;
        if (entry.evicted && entry.users === 0) entry.model.dispose();
      }
    },
    keys: () => [...entries.keys()],
    bytes: () => total,
    clear() {
      for (const [key, entry] of entries) evict(key, entry);
    },
  };
}
