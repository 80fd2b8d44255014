import { InvalidSpecError } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { EFFDET_ANCHOR_DEFAULTS, featureSizes, generateAnchors } from './anchors.js';

describe('generateAnchors', () => {
  it("has effdet's anchor count: 49104 for D0 at 512 px, 9 per location", () => {
    const a = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: 512 });
    expect(a.count).toBe(9 * (64 * 64 + 32 * 32 + 16 * 16 + 8 * 8 + 4 * 4));
    expect(a.count).toBe(49104);
    expect(a.anchorsPerLocation).toBe(9);
    expect(a.levels.map((l) => [l.level, l.height, l.width, l.stride[0], l.offset])).toEqual([
      [3, 64, 64, 8, 0],
      [4, 32, 32, 16, 36864],
      [5, 16, 16, 32, 46080],
      [6, 8, 8, 64, 48384],
      [7, 4, 4, 128, 48960],
    ]);
  });

  it('orders anchors by level, row, column, then scale and aspect (hand-computed, yxyx)', () => {
    const a = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: 512 });
    const box = (i: number) => [...a.boxes.subarray(i * 4, i * 4 + 4)];
    // Level 3, cell (0, 0), scale 2^0, aspect (1, 1): centre 4, half size 4 * 8 / 2 = 16.
    expect(box(0)).toEqual([-12, -12, 20, 20]);
    // Aspect (1.4, 0.7): half sizes x 22.4, y 11.2.
    expect(box(1)).toEqual([Math.fround(4 - 11.2), Math.fround(4 - 22.4), Math.fround(4 + 11.2), Math.fround(4 + 22.4)]);
    // Next column: centre x 12.
    expect(box(9)).toEqual([-12, -4, 20, 28]);
    // Scale 2^(1/3), aspect (1, 1).
    const h = (4 * 8 * 2 ** (1 / 3)) / 2;
    expect(box(3)).toEqual([Math.fround(4 - h), Math.fround(4 - h), Math.fround(4 + h), Math.fround(4 + h)]);
    // First anchor of level 7: centre 64, half 4 * 128 / 2.
    expect(box(48960)).toEqual([-192, -192, 320, 320]);
  });

  it('handles non-square inputs with per-axis strides', () => {
    const a = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: [384, 640] });
    expect(a.levels[0]).toMatchObject({ height: 48, width: 80, stride: [8, 8] });
    expect(a.imageSize).toEqual([384, 640]);
    // Last anchor of level 3 is centred at the bottom-right cell.
    const last = a.levels[0]!.count - 1;
    const b = a.boxes.subarray(last * 4, last * 4 + 4);
    expect([(b[0]! + b[2]!) / 2, (b[1]! + b[3]!) / 2]).toEqual([380, 636]);
  });

  it('halves feature sizes rounding up, as effdet', () => {
    expect(featureSizes([100, 100], 7).map((s) => s[0])).toEqual([100, 50, 25, 13, 7, 4, 2, 1]);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: 0 })).toThrow(InvalidSpecError);
    expect(() => generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: 512, anchorScale: [4, 4] })).toThrow(/one per level \(5\)/);
    expect(() => generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: 512, minLevel: 5, maxLevel: 4 })).toThrow(/minLevel <= maxLevel/);
  });
});
