import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classificationReport, confusionMatrix } from './classification.js';
import { MetricsInputError } from './errors.js';

/** numClasses, then paired true and predicted labels in [0, numClasses). */
const labelled = fc.integer({ min: 1, max: 8 }).chain((k) =>
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: k - 1 }), fc.integer({ min: 0, max: k - 1 })), { minLength: 1, maxLength: 300 })
    .map((pairs) => ({ k, yTrue: pairs.map((p) => p[0]), yPred: pairs.map((p) => p[1]) })),
);

const names = (k: number): string[] => Array.from({ length: k }, (_, i) => `c${i}`);
const close = (a: number, b: number): void => expect(Math.abs(a - b)).toBeLessThan(1e-12);

describe('confusionMatrix', () => {
  it('counts true classes in rows and predictions in columns', () => {
    expect(confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3)).toEqual([
      [2, 0, 0],
      [0, 0, 1],
      [1, 0, 2],
    ]); // scikit-learn's confusion_matrix docstring example
  });

  it('has rows summing to the supports and columns to the prediction counts', () => {
    fc.assert(
      fc.property(labelled, ({ k, yTrue, yPred }) => {
        const m = confusionMatrix(yTrue, yPred, k);
        for (let c = 0; c < k; c++) {
          expect(m[c]!.reduce((s, v) => s + v, 0)).toBe(yTrue.filter((t) => t === c).length);
          expect(m.reduce((s, row) => s + row[c]!, 0)).toBe(yPred.filter((p) => p === c).length);
        }
      }),
    );
  });

  it('names the argument and element at fault', () => {
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(/has 1 labels but yTrue has 2/);
    expect(() => confusionMatrix([0, 3], [0, 1], 3)).toThrow(/yTrue: element 1 is 3, not a class index in \[0, 3\)/);
    expect(() => confusionMatrix([0], [0.5], 3)).toThrow(MetricsInputError);
    expect(() => confusionMatrix([0], [0], 0)).toThrow(/numClasses/);
  });
});

describe('classificationReport', () => {
  it("matches scikit-learn's classification_report example (worked by hand)", () => {
    // y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1], target_names = ['class 0', 'class 1', 'class 2'].
    // Documented output (2 decimals): class 0: 0.50 1.00 0.67 1; class 1: 0.00 0.00 0.00 1; class 2: 1.00 0.67 0.80 3;
    // accuracy 0.60; macro avg 0.50 0.56 0.49; weighted avg 0.70 0.60 0.61.
    const r = classificationReport([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], ['class 0', 'class 1', 'class 2']);
    // class 0: tp 1, predicted 2, support 1 -> p 1/2, r 1, f1 2*1/(2+1+0) = 2/3.
    // class 1: tp 0, predicted 1, support 1 -> 0, 0, 0.
    // class 2: tp 2, predicted 2, support 3 -> p 1, r 2/3, f1 4/(4+0+1) = 4/5.
    expect(r.perClass).toEqual([
      { class: 'class 0', precision: 1 / 2, recall: 1, f1: 2 / 3, support: 1 },
      { class: 'class 1', precision: 0, recall: 0, f1: 0, support: 1 },
      { class: 'class 2', precision: 1, recall: 2 / 3, f1: 4 / 5, support: 3 },
    ]);
    close(r.accuracy, 3 / 5);
    close(r.macro.precision, (1 / 2 + 0 + 1) / 3); // 0.50
    close(r.macro.recall, (1 + 0 + 2 / 3) / 3); // 0.56
    close(r.macro.f1, (2 / 3 + 0 + 4 / 5) / 3); // 0.49
    close(r.weighted.precision, (1 * 0.5 + 1 * 0 + 3 * 1) / 5); // 0.70
    close(r.weighted.recall, (1 * 1 + 0 + 3 * (2 / 3)) / 5); // 0.60
    close(r.weighted.f1, (1 * (2 / 3) + 0 + 3 * 0.8) / 5); // 0.61
    const twoDecimals = (x: number): string => x.toFixed(2);
    expect([r.accuracy, r.macro.precision, r.macro.recall, r.macro.f1].map(twoDecimals)).toEqual(['0.60', '0.50', '0.56', '0.49']);
    expect([r.weighted.precision, r.weighted.recall, r.weighted.f1].map(twoDecimals)).toEqual(['0.70', '0.60', '0.61']);
    expect(r.confusion).toEqual([
      [1, 0, 0],
      [1, 0, 0],
      [0, 1, 2],
    ]);
    expect(r.total).toBe(5);
  });

  it('uses zero_division=0 for classes never predicted or never present', () => {
    // Class 2 never occurs and is never predicted; class 1 is never predicted.
    const r = classificationReport([0, 1, 0], [0, 0, 0], ['a', 'b', 'c']);
    expect(r.perClass[1]).toEqual({ class: 'b', precision: 0, recall: 0, f1: 0, support: 1 });
    expect(r.perClass[2]).toEqual({ class: 'c', precision: 0, recall: 0, f1: 0, support: 0 });
    close(r.macro.recall, 1 / 3); // every listed class counts in the macro mean
  });

  it('states the invariants: accuracy = trace / total, macro = mean, weighted by support, f1 = harmonic mean', () => {
    fc.assert(
      fc.property(labelled, ({ k, yTrue, yPred }) => {
        const r = classificationReport(yTrue, yPred, names(k));
        const trace = r.confusion.reduce((s, row, i) => s + row[i]!, 0);
        close(r.accuracy, trace / yTrue.length);
        close(r.accuracy, yTrue.filter((t, i) => t === yPred[i]).length / yTrue.length);
        for (const key of ['precision', 'recall', 'f1'] as const) {
          close(r.macro[key], r.perClass.reduce((s, m) => s + m[key], 0) / k);
          close(r.weighted[key], r.perClass.reduce((s, m) => s + m[key] * m.support, 0) / yTrue.length);
        }
        expect(r.perClass.reduce((s, m) => s + m.support, 0)).toBe(yTrue.length);
        r.perClass.forEach((m, c) => {
          expect(r.confusion[c]!.reduce((s, v) => s + v, 0)).toBe(m.support);
          for (const v of [m.precision, m.recall, m.f1]) expect(v >= 0 && v <= 1).toBe(true);
          if (m.precision + m.recall > 0) close(m.f1, (2 * m.precision * m.recall) / (m.precision + m.recall));
          else expect(m.f1).toBe(0);
        });
        // Weighted recall is accuracy (sum of tp over total).
        close(r.weighted.recall, r.accuracy);
      }),
      { numRuns: 300 },
    );
  });

  it('gives 1 everywhere for perfect predictions of present classes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }).chain((k) => fc.shuffledSubarray(Array.from({ length: 3 * k }, (_, i) => i % k), { minLength: 1 }).map((y) => ({ k, y }))), ({ k, y }) => {
        // Name only the classes present, so none is zero-support.
        const present = [...new Set(y)].sort((a, b) => a - b);
        const remap = y.map((v) => present.indexOf(v));
        const r = classificationReport(remap, remap, names(present.length));
        expect(r.accuracy).toBe(1);
        for (const m of r.perClass) expect([m.precision, m.recall, m.f1]).toEqual([1, 1, 1]);
        expect(r.macro).toEqual({ precision: 1, recall: 1, f1: 1 });
        for (const v of Object.values(r.weighted)) close(v, 1);
        expect(k).toBeGreaterThan(0);
      }),
    );
  });

  it('rejects empty input', () => {
    expect(() => classificationReport([], [], ['a'])).toThrow(/at least one sample/);
    expect(() => classificationReport([0], [0], [])).toThrow(/one name per class/);
  });
});
