import { describe, expect, it } from 'vitest';
import { drawTransform, IDENTITY_TRANSFORM } from '../../src/data/augmentation.js';
import { transformImage } from '../../src/data/image-transform.js';

const PAPER = { crop: true, flip: true, jitter: 0.4 };

describe('augmentation', () => {
  it("random-resized crops keep the paper's bounds: 8%–100% of the area, aspect 3/4–4/3, inside the image", () => {
    let flips = 0;
    for (let seed = 1; seed <= 2000; seed++) {
      const t = drawTransform(PAPER, seed, 300, 200);
      const box = t.box!;
      const area = (box.width * box.height) / (300 * 200);
      const whole = box.width === 300 && box.height === 200;
      if (!whole) {
        expect(area).toBeGreaterThanOrEqual(0.08 - 1e-9);
        expect(box.width / box.height).toBeGreaterThanOrEqual(3 / 4 - 1e-9);
        expect(box.width / box.height).toBeLessThanOrEqual(4 / 3 + 1e-9);
      }
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.y).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(300 + 1e-9);
      expect(box.y + box.height).toBeLessThanOrEqual(200 + 1e-9);
      for (const f of [t.brightness, t.contrast, t.saturation]) {
        expect(f).toBeGreaterThanOrEqual(0.6);
        expect(f).toBeLessThanOrEqual(1.4);
      }
      if (t.flip) flips++;
    }
    expect(flips).toBeGreaterThan(900);
    expect(flips).toBeLessThan(1100);
    // The same seed draws the same transform; another seed another one.
    expect(drawTransform(PAPER, 42, 300, 200)).toEqual(drawTransform(PAPER, 42, 300, 200));
    expect(drawTransform(PAPER, 42, 300, 200)).not.toEqual(drawTransform(PAPER, 43, 300, 200));
  });

  it('a flip mirrors the image; no saturation leaves grey', () => {
    // 2x1 RGB: red then blue.
    const image = {
      data: Uint8Array.from([255, 0, 0, 0, 0, 255]),
      width: 2,
      height: 1,
      channels: 3 as const,
    };
    const plain = new Float32Array(2 * 2 * 3);
    const flipped = new Float32Array(2 * 2 * 3);
    transformImage(image, 2, 3, IDENTITY_TRANSFORM, plain, 0);
    transformImage(image, 2, 3, { ...IDENTITY_TRANSFORM, flip: true }, flipped, 0);
    expect(Array.from(plain.subarray(0, 3))).toEqual([1, 0, 0]);
    expect(Array.from(flipped.subarray(0, 3))).toEqual([0, 0, 1]);
    const grey = new Float32Array(2 * 2 * 3);
    transformImage(image, 2, 3, { ...IDENTITY_TRANSFORM, saturation: 0 }, grey, 0);
    expect(grey[0]).toBeCloseTo(grey[1]!, 6);
    expect(grey[1]).toBeCloseTo(grey[2]!, 6);
  });
});
