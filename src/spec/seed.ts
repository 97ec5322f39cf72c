import { z } from 'zod';

/** A seed as configs take it: a non-negative 31-bit integer. */
export const seedSchema = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);

/**
 * Small deterministic seed utilities. Seeds are derived by hashing rather than by drawing from a
 * stateful generator, so any (step, index) position can be reproduced without replaying history.
 */

/** 32-bit mix of several integers (splitmix/murmur-style finaliser). Result is in [1, 2^31). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 1 || 1;
}

/** mulberry32: a tiny, fast PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
