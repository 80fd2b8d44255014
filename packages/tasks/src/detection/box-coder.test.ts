import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBoxes, encodeBoxes } from './box-coder.js';

/** A yxyx box with positive size. */
const box = fc
  .tuple(fc.double({ min: -100, max: 600, noNaN: true }), fc.double({ min: -100, max: 600, noNaN: true }), fc.double({ min: 1, max: 400, noNaN: true }), fc.double({ min: 1, max: 400, noNaN: true }))
  .map(([y, x, h, w]) => [Math.fround(y), Math.fround(x), Math.fround(y + h), Math.fround(x + w)]);

describe('box coder', () => {
  it('decode(encode(b)) = b, to float32 precision (and eps)', () => {
    fc.assert(
      fc.property(box, box, fc.option(fc.constant([10, 10, 5, 5] as const), { nil: undefined }), (b, anchor, scaleFactors) => {
        const codes = encodeBoxes(b, anchor, { scaleFactors });
        const back = decodeBoxes(codes, anchor, { scaleFactors });
        const size = Math.max(b[2]! - b[0]!, b[3]! - b[1]!, anchor[2]! - anchor[0]!, anchor[3]! - anchor[1]!);
        // float32 rounding scales with every coordinate involved: the box's and the anchor's (a box far from its anchor).
        const magnitude = Math.max(...b.map(Math.abs), ...anchor.map(Math.abs));
        for (let k = 0; k < 4; k++) expect(Math.abs(back[k]! - b[k]!)).toBeLessThan(1e-6 * (size + magnitude) * 8 + 1e-6);
      }),
    );
  });

  it('zero codes decode to the anchor; an anchor encodes to (almost) zero', () => {
    const anchor = [10, 20, 50, 100];
    expect([...decodeBoxes([0, 0, 0, 0], anchor)]).toEqual(anchor);
    expect([...decodeBoxes([0, 0, 0, 0], anchor, { xyxy: true })]).toEqual([20, 10, 100, 50]);
    const codes = encodeBoxes(anchor, anchor);
    for (const c of codes) expect(Math.abs(c)).toBeLessThan(1e-6);
  });

  it('codes are centre offsets in anchor sizes and log size ratios (hand-computed)', () => {
    // Anchor 40 high, 80 wide centred (30, 60); box 20 high, 160 wide centred (40, 60).
    const codes = encodeBoxes([30, -20, 50, 140], [10, 20, 50, 100], { eps: 0 });
    expect(codes[0]).toBeCloseTo(0.25, 6);
    expect(codes[1]).toBeCloseTo(0, 6);
    expect(codes[2]).toBeCloseTo(Math.log(0.5), 6);
    expect(codes[3]).toBeCloseTo(Math.log(2), 6);
  });

  it('rejects mismatched lengths and bad scale factors', () => {
    expect(() => decodeBoxes([0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 1, 1])).toThrow(/same length/);
    expect(() => encodeBoxes([0, 0, 1, 1], [0, 0, 1, 1], { scaleFactors: [1, 1, 0, 1] })).toThrow(/four positive numbers/);
  });
});
