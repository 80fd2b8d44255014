import { InvalidSpecError } from '@effnet/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IMAGENET_LABELS, labelsFor, UnknownLabelSetError } from './label-sets.js';
import { softmax, topK } from './topk.js';

describe('ImageNet-1k labels', () => {
  it("are torchvision's 1000 names in index order", () => {
    expect(IMAGENET_LABELS).toHaveLength(1000);
    expect(new Set(IMAGENET_LABELS).size).toBe(1000);
    expect(IMAGENET_LABELS[0]).toBe('tench');
    expect(IMAGENET_LABELS[1]).toBe('goldfish');
    expect(IMAGENET_LABELS[281]).toBe('tabby');
    expect(IMAGENET_LABELS[285]).toBe('Egyptian cat');
    expect(IMAGENET_LABELS[999]).toBe('toilet tissue');
    expect(Object.isFrozen(IMAGENET_LABELS)).toBe(true);
  });

  it('labelsFor resolves a set name or passes a list through', () => {
    expect(labelsFor('imagenet-1k')).toBe(IMAGENET_LABELS);
    const mine = ['cat', 'dog'];
    expect(labelsFor(mine)).toBe(mine);
    expect(() => labelsFor('imagenet-12k')).toThrow(UnknownLabelSetError);
    expect(() => labelsFor('imagenet-12k')).toThrow(/"imagenet-12k" \(known: imagenet-1k\b[^)]*\); pass the class names yourself/);
    expect(() => labelsFor('constructor')).toThrow(UnknownLabelSetError);
  });
});

describe('softmax', () => {
  it('normalises each row and keeps the order of the logits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 20 }), fc.array(fc.float({ min: -50, max: 50, noNaN: true }), { minLength: 80, maxLength: 80 }), (rows, classes, values) => {
        const logits = Float32Array.from(values.slice(0, rows * classes));
        const p = softmax(logits, classes);
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          for (let i = 0; i < classes; i++) sum += p[r * classes + i]!;
          expect(sum).toBeCloseTo(1, 5);
          for (let i = 1; i < classes; i++) {
            const a = logits[r * classes + i - 1]!;
            const b = logits[r * classes + i]!;
            if (a < b) expect(p[r * classes + i - 1]!).toBeLessThanOrEqual(p[r * classes + i]!);
          }
        }
      }),
    );
  });

  it('is stable for large logits and handles -Infinity', () => {
    expect([...softmax(Float32Array.from([1000, 1000, -Infinity]), 3)]).toEqual([0.5, 0.5, 0]);
    expect([...softmax(Float32Array.from([-Infinity, -Infinity]), 2)]).toEqual([0.5, 0.5]);
    expect(softmax(Float32Array.from([0, Math.log(3)]), 2)[1]).toBeCloseTo(0.75, 6);
  });

  it('rejects a length that is not whole rows', () => {
    expect(() => softmax(new Float32Array(5), 2)).toThrow(InvalidSpecError);
    expect(() => softmax(new Float32Array(4), 0)).toThrow(/numClasses/);
  });
});

describe('topK', () => {
  it('returns the k best per row, best first, with labels', () => {
    const probs = Float32Array.from([0.1, 0.6, 0.3, 0.5, 0.2, 0.3]);
    expect(topK(probs, 2, { labels: ['a', 'b', 'c'] })).toEqual([
      [
        { index: 1, label: 'b', prob: Math.fround(0.6) },
        { index: 2, label: 'c', prob: Math.fround(0.3) },
      ],
      [
        { index: 0, label: 'a', prob: Math.fround(0.5) },
        { index: 2, label: 'c', prob: Math.fround(0.3) },
      ],
    ]);
    expect(topK(probs, 1, { numClasses: 6 })).toEqual([[{ index: 1, prob: Math.fround(0.6) }]]);
  });

  it('agrees with a full sort (ties to the lower index, NaN last), k clamped to the classes', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.float({ noNaN: true }), fc.constant(Number.NaN), fc.constant(0.5)), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 40 }), (values, k) => {
        const probs = Float32Array.from(values);
        const key = (v: number) => (Number.isNaN(v) ? -Infinity : v);
        const expected = [...probs.keys()].sort((a, b) => key(probs[b]!) - key(probs[a]!) || a - b).slice(0, k);
        // -Infinity - -Infinity is NaN: fall back to the index for those ties.
        const sorted = [...probs.keys()].sort((a, b) => {
          const d = key(probs[b]!) - key(probs[a]!);
          return Number.isNaN(d) || d === 0 ? a - b : d;
        });
        expect(topK(probs, k)[0]!.map((e) => e.index)).toEqual(sorted.slice(0, Math.min(k, probs.length)));
        expect(expected.length).toBe(Math.min(k, probs.length));
      }),
    );
  });

  it('rejects bad k and labels that do not fit', () => {
    expect(() => topK(new Float32Array(4), 0)).toThrow(/k/);
    expect(() => topK(new Float32Array(4), 1, { numClasses: 2, labels: ['a', 'b', 'c'] })).toThrow(/one name per class/);
  });
});
