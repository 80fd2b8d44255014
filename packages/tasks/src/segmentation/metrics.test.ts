import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeWithPeers, runPythonCode } from '../../../../testing/peers.js';
import { SegmentationConfusion } from './metrics.js';

/** IoU per class straight from the definition: |pred = c and label = c| / |pred = c or label = c| over counted pixels. */
function naive(labels: number[], preds: number[], k: number) {
  const kept = labels.map((l, i) => [l, preds[i]!] as const).filter(([l]) => l !== 255);
  const iou = Array.from({ length: k }, (_, c) => {
    const inter = kept.filter(([l, p]) => l === c && p === c).length;
    const union = kept.filter(([l, p]) => l === c || p === c).length;
    return union ? inter / union : null;
  });
  const present = iou.filter((v): v is number => v !== null);
  return { iou, mIoU: present.reduce((a, b) => a + b, 0) / present.length, acc: kept.filter(([l, p]) => l === p).length / kept.length };
}

describe('segmentation metrics from one confusion matrix', () => {
  it('equal the definitions on any labels (255 ignored) and predictions, accumulated over several images', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((k) =>
          fc.tuple(fc.constant(k), fc.array(fc.array(fc.tuple(fc.oneof(fc.integer({ min: 0, max: k - 1 }), fc.constant(255)), fc.integer({ min: 0, max: k - 1 })), { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 4 })),
        ),
        ([k, images]) => {
          const cm = new SegmentationConfusion(k);
          for (const im of images) cm.add(im.map(([l]) => l), im.map(([, p]) => p));
          const all = images.flat();
          const m = cm.metrics();
          const want = naive(all.map(([l]) => l), all.map(([, p]) => p), k);
          if (all.every(([l]) => l === 255)) {
            expect(m.pixels).toBe(0);
            return;
          }
          expect(m.perClassIoU.map((v) => (v === null ? null : Number(v.toFixed(12))))).toEqual(want.iou.map((v) => (v === null ? null : Number(v.toFixed(12)))));
          expect(m.mIoU).toBeCloseTo(want.mIoU, 12);
          expect(m.pixelAccuracy).toBeCloseTo(want.acc, 12);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses labels and predictions outside the classes, naming them', () => {
    const cm = new SegmentationConfusion(3);
    expect(() => cm.add([0, 3], [0, 0])).toThrow(/label: 3/);
    expect(() => cm.add([0, 1], [0, 5])).toThrow(/prediction: 5/);
    expect(() => cm.add([0, 1], [0])).toThrow(/2 values/);
  });
});

describeWithPeers(['sklearn', 'numpy'], 'segmentation metrics against sklearn', () => {
  it("per-class IoU = sklearn's jaccard_score, pixel accuracy = accuracy_score, confusion = confusion_matrix", () => {
    const k = 5;
    const labels: number[] = [];
    const preds: number[] = [];
    let s = 12345;
    const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % 1000;
    for (let i = 0; i < 3000; i++) {
      const l = next() < 80 ? 255 : next() % k;
      labels.push(l);
      preds.push(next() < 600 && l !== 255 ? l : next() % k);
    }
    const ref = JSON.parse(
      runPythonCode(`
import json, numpy as np
from sklearn.metrics import jaccard_score, accuracy_score, confusion_matrix
l = np.array(${JSON.stringify(labels)}); p = np.array(${JSON.stringify(preds)})
keep = l != 255
print(json.dumps({"iou": jaccard_score(l[keep], p[keep], labels=list(range(${k})), average=None, zero_division=0).tolist(),
                  "acc": accuracy_score(l[keep], p[keep]), "cm": confusion_matrix(l[keep], p[keep], labels=list(range(${k}))).tolist()}))
`),
    ) as { iou: number[]; acc: number; cm: number[][] };
    const cm = new SegmentationConfusion(k);
    cm.add(labels.slice(0, 1000), preds.slice(0, 1000));
    cm.add(labels.slice(1000), preds.slice(1000));
    const m = cm.metrics();
    expect(m.confusion).toEqual(ref.cm);
    m.perClassIoU.forEach((v, i) => expect(v).toBeCloseTo(ref.iou[i]!, 12));
    expect(m.mIoU).toBeCloseTo(ref.iou.reduce((a, b) => a + b, 0) / k, 12);
    expect(m.pixelAccuracy).toBeCloseTo(ref.acc, 12);
  });
});
