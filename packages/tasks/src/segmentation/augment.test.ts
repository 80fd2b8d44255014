import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { segmentationTrainTransform, warpPair } from './augment.js';
import { classColor } from './index-png.js';

/** An image painted with its mask's class colours: after a joint warp the two must still agree pixel by pixel. */
function painted(w: number, h: number, seed: number) {
  const mask = new Uint8Array(w * h).map((_, i) => (Math.imul(seed + (i >> 2), 2654435761) >>> 29) % 5);
  const data = new Uint8Array(w * h * 3);
  mask.forEach((c, i) => data.set(classColor(c), i * 3));
  return { image: { data, width: w, height: h }, mask: { data: mask, width: w, height: h } };
}

describe('joint augmentation of image and mask', () => {
  it('one geometry for both: integer crops, flips and 2x zooms keep every mask pixel on its image colour', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), fc.integer({ min: 2, max: 20 }), fc.integer(), fc.boolean(), fc.constantFrom(1, 2), fc.integer({ min: -4, max: 4 }), fc.integer({ min: -4, max: 4 }), (w, h, seed, flip, s, left, top) => {
        const { image, mask } = painted(w, h, seed);
        // A 2x zoom of a constant 2x2 block is the block again, so bilinear and nearest agree away from block edges.
        const out = warpPair(image, mask, { sx: s, sy: s, left: left * s, top: top * s, flip }, 12, 12);
        for (let i = 0; i < 144; i++) {
          const c = out.mask.data[i]!;
          if (c === 255) continue;
          if (s === 1) expect(Array.from(out.image.data.subarray(i * 3, i * 3 + 3))).toEqual(classColor(c));
        }
        if (s === 1 && !flip && left >= 0 && top >= 0)
          for (let y = 0; y < 12; y++)
            for (let x = 0; x < 12; x++) {
              const sx = x + left;
              const sy = y + top;
              expect(out.mask.data[y * 12 + x]).toBe(sx < w && sy < h ? mask.data[sy * w + sx] : 255);
            }
      }),
      { numRuns: 60 },
    );
  });

  it('the training view is seeded: the same seed gives the same pair; masks only hold source labels or 255', () => {
    const { image, mask } = painted(40, 30, 3);
    const o = { size: 32, scale: [0.5, 1.5] as [number, number], hflip: 0.5 };
    const a = segmentationTrainTransform(image, mask, { ...o, seed: 9 });
    expect(segmentationTrainTransform(image, mask, { ...o, seed: 9 })).toEqual(a);
    const labels = new Set(mask.data);
    for (const v of a.mask.data) expect(v === 255 || labels.has(v)).toBe(true);
    expect(a.image.width).toBe(32);
    expect(a.mask.height).toBe(32);
  });
});
