import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { labelAnchors } from './anchor-labeler.js';
import { EFFDET_ANCHOR_DEFAULTS, generateAnchors } from './anchors.js';
import { decodeBoxes } from './box-coder.js';

const anchors = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: 128 });

/** Anchor i as xyxy. */
function anchorXyxy(i: number): number[] {
  const [y0, x0, y1, x1] = anchors.boxes.subarray(i * 4, i * 4 + 4);
  return [x0!, y0!, x1!, y1!];
}

const box = fc
  .tuple(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 120 }), fc.integer({ min: 2, max: 128 }), fc.integer({ min: 2, max: 128 }))
  .map(([x, y, w, h]) => [x, y, Math.min(x + w, 128), Math.min(y + h, 128)]);

describe('labelAnchors', () => {
  it('makes an anchor that equals a box positive, with (near) zero box targets', () => {
    const i = 1234;
    const t = labelAnchors(anchors, anchorXyxy(i), [2]);
    expect(t.matches[i]).toBe(0);
    const l = anchors.levels.findIndex((lv) => i >= lv.offset && i < lv.offset + lv.count);
    const j = i - anchors.levels[l]!.offset;
    expect(t.classTargets[l]![j]).toBe(2);
    for (const v of t.boxTargets[l]!.subarray(j * 4, j * 4 + 4)) expect(Math.abs(v)).toBeLessThan(1e-6);
  });

  it('without boxes every anchor is negative', () => {
    const t = labelAnchors(anchors, [], []);
    expect(t.numPositives).toBe(0);
    expect(t.classTargets.every((c) => c.every((v) => v === -1))).toBe(true);
  });

  it('gives positive anchors targets that decode back to their box, and the first box always an anchor', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(box, fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 6 }), (gt) => {
        const t = labelAnchors(
          anchors,
          gt.flatMap(([b]) => b),
          gt.map(([, c]) => c),
        );
        const cls = new Int32Array(anchors.count);
        const targets = new Float32Array(anchors.count * 4);
        anchors.levels.forEach((lv, l) => {
          cls.set(t.classTargets[l]!, lv.offset);
          targets.set(t.boxTargets[l]!, lv.offset * 4);
        });
        let positives = 0;
        const matchedBoxes = new Set<number>();
        for (let n = 0; n < anchors.count; n++) {
          const m = t.matches[n]!;
          if (m < 0) {
            expect(cls[n]).toBe(m);
            continue;
          }
          positives++;
          matchedBoxes.add(m);
          expect(cls[n]).toBe(gt[m]![1]);
          const [y0, x0, y1, x1] = decodeBoxes(targets.subarray(n * 4, n * 4 + 4), anchors.boxes.subarray(n * 4, n * 4 + 4));
          const [bx0, by0, bx1, by1] = gt[m]![0];
          for (const [a, b] of [[x0, bx0], [y0, by0], [x1, bx1], [y1, by1]] as const) expect(Math.abs(a! - b!)).toBeLessThan(1e-3);
        }
        expect(t.numPositives).toBe(positives);
        // Forced matches: the first box wins every anchor it is the best box for, so it always has one.
        expect(matchedBoxes.has(0)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('ignores anchors between the thresholds when they differ, and skips boxes with a negative class', () => {
    const gt = [10, 10, 60, 50, 0, 0, 5, 5];
    const t = labelAnchors(anchors, gt, [1, -1], { unmatchedThreshold: 0.4 });
    expect(t.matches.some((m) => m === -2)).toBe(true);
    expect(t.matches.every((m) => m !== 1)).toBe(true);
    const flat = t.classTargets.flatMap((c) => [...c]);
    flat.forEach((c, n) => expect(c).toBe(t.matches[n]! >= 0 ? 1 : t.matches[n]));
    expect(() => labelAnchors(anchors, gt, [1, 1], { matchThreshold: 0.4, unmatchedThreshold: 0.5 })).toThrow(/at most matchThreshold/);
    expect(() => labelAnchors(anchors, gt, [1])).toThrow(/4 numbers per class/);
  });
});
