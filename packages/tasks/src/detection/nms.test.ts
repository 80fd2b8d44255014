import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchedNms, batchedSoftNms, boxIou, nms } from './nms.js';

interface Case {
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
}

/** Boxes on an integer grid (clustered so that many overlap), scores with deliberate ties, a few classes. */
function cases(maxBoxes: number): fc.Arbitrary<Case> {
  const one = fc.record({
    x: fc.integer({ min: 0, max: 60 }),
    y: fc.integer({ min: 0, max: 60 }),
    w: fc.integer({ min: 1, max: 40 }),
    h: fc.integer({ min: 1, max: 40 }),
    score: fc.oneof(fc.constantFrom(0.5, 0.25, 0.9), fc.float({ min: 0, max: 1, noNaN: true })),
    cls: fc.integer({ min: 0, max: 3 }),
  });
  return fc.array(one, { minLength: 0, maxLength: maxBoxes }).map((list) => ({
    boxes: Float32Array.from(list.flatMap((b) => [b.x, b.y, b.x + b.w, b.y + b.h])),
    scores: Float32Array.from(list, (b) => b.score),
    classes: Int32Array.from(list, (b) => b.cls),
  }));
}

const pick = (c: Case, keep: number[]): Case => ({
  boxes: Float32Array.from(keep.flatMap((i) => [...c.boxes.subarray(i * 4, i * 4 + 4)])),
  scores: Float32Array.from(keep, (i) => c.scores[i]!),
  classes: Int32Array.from(keep, (i) => c.classes[i]!),
});

describe('batchedNms (torchvision semantics)', () => {
  it('keeps boxes of one class that never overlap above the threshold, best first, and drops only covered boxes', () => {
    fc.assert(
      fc.property(cases(60), fc.constantFrom(0.3, 0.5, 0.7), (c, thr) => {
        const keep = batchedNms(c.boxes, c.scores, c.classes, thr);
        expect(new Set(keep).size).toBe(keep.length);
        for (let a = 1; a < keep.length; a++) {
          const [p, q] = [keep[a - 1]!, keep[a]!];
          // Sorted by score, ties by index.
          expect(c.scores[p]! > c.scores[q]! || (c.scores[p] === c.scores[q] && p < q)).toBe(true);
        }
        for (const i of keep) for (const j of keep) if (i < j && c.classes[i] === c.classes[j]) expect(boxIou(c.boxes, i, j)).toBeLessThanOrEqual(thr);
        const kept = new Set(keep);
        for (let j = 0; j < c.scores.length; j++) {
          if (kept.has(j)) continue;
          // A dropped box overlaps a kept box of its class that comes before it.
          const cover = keep.some((i) => c.classes[i] === c.classes[j] && (c.scores[i]! > c.scores[j]! || (c.scores[i] === c.scores[j] && i < j)) && boxIou(c.boxes, i, j) > thr);
          expect(cover).toBe(true);
        }
      }),
    );
  });

  it('is idempotent: NMS of its own output keeps everything', () => {
    fc.assert(
      fc.property(cases(60), (c) => {
        const kept = pick(c, batchedNms(c.boxes, c.scores, c.classes, 0.5));
        const again = batchedNms(kept.boxes, kept.scores, kept.classes, 0.5);
        expect(again).toEqual(Array.from({ length: kept.scores.length }, (_, i) => i));
      }),
    );
  });

  it("offsetting boxes by class (torchvision's path up to 1000 boxes) gives the same as NMS class by class", () => {
    fc.assert(
      fc.property(cases(80), (c) => {
        const perClass: number[] = [];
        for (const k of new Set(c.classes)) perClass.push(...nms(c.boxes, c.scores, 0.5, [...c.classes.keys()].filter((i) => c.classes[i] === k)));
        perClass.sort((a, b) => c.scores[b]! - c.scores[a]! || a - b);
        expect(batchedNms(c.boxes, c.scores, c.classes, 0.5)).toEqual(perClass);
      }),
    );
  });

  it('runs class by class above 1000 boxes and keeps overlapping boxes of different classes', () => {
    const n = 1200;
    const boxes = new Float32Array(n * 4);
    const scores = new Float32Array(n);
    const classes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      boxes.set([0, 0, 10, 10], i * 4); // all identical
      scores[i] = (i % 7) / 7;
      classes[i] = i % 3;
    }
    // One survivor per class: its best score, lowest index among equals.
    expect(batchedNms(boxes, scores, classes, 0.5)).toEqual([6, 13, 20]);
  });

  it('breaks score ties by index', () => {
    const boxes = [0, 0, 10, 10, 0, 0, 10, 10];
    expect(nms(boxes, [0.5, 0.5], 0.5)).toEqual([0]);
    expect(nms(boxes, [0.4, 0.5], 0.5)).toEqual([1]);
  });
});

describe('boxIou', () => {
  it('is symmetric and within [0, 1], 1 for a box with itself', () => {
    fc.assert(
      fc.property(cases(2).filter((c) => c.scores.length === 2), (c) => {
        const ab = boxIou(c.boxes, 0, 1);
        expect(ab).toBe(boxIou(c.boxes, 1, 0));
        expect(ab).toBeGreaterThanOrEqual(0);
        expect(ab).toBeLessThanOrEqual(1);
        expect(boxIou(c.boxes, 0, 0)).toBe(1);
      }),
    );
  });
});

describe('batchedSoftNms (effdet, Gaussian)', () => {
  it('picks every box once at most, in non-increasing decayed score, never raising a score', () => {
    fc.assert(
      fc.property(cases(40), (c) => {
        const { indices, scores } = batchedSoftNms(c.boxes, c.scores, c.classes);
        expect(new Set(indices).size).toBe(indices.length);
        for (let j = 0; j < indices.length; j++) {
          expect(scores[j]!).toBeLessThanOrEqual(c.scores[indices[j]!]!);
          if (j > 0) {
            expect(scores[j]!).toBeLessThanOrEqual(scores[j - 1]!);
            expect(scores[j]!).toBeGreaterThan(0.001);
          }
        }
      }),
    );
  });

  it('decays overlapping boxes of a class by exp(-iou^2 / sigma) and leaves other classes alone', () => {
    // Boxes 0 and 1 overlap with IoU 0.5 (same class); box 2 is identical to 0 but of another class.
    const boxes = [0, 0, 10, 10, 0, 0, 10, 5, 0, 0, 10, 10];
    const { indices, scores } = batchedSoftNms(boxes, [0.9, 0.8, 0.7], [0, 0, 1]);
    expect(indices).toEqual([0, 2, 1]);
    expect(scores[0]).toBeCloseTo(0.9, 6);
    expect(scores[1]).toBeCloseTo(0.7, 6);
    expect(scores[2]).toBeCloseTo(0.8 * Math.exp(-0.25 / 0.5), 6);
  });
});
