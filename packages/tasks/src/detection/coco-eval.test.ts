import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cocoBoxIou, COCO_IOU_THRESHOLDS, evaluateCoco, formatCocoSummary, pairwiseSum, type CocoStats } from './coco-eval.js';
import type { CocoAnnotation, CocoDetection, CocoGroundTruth } from './coco-format.js';
import { CocoFormatError } from './errors.js';

function gt(annotations: Partial<CocoAnnotation>[], images = [1], categories = [1]): CocoGroundTruth {
  return {
    images: images.map((id) => ({ id, width: 100, height: 100 })),
    categories: categories.map((id) => ({ id, name: `cat${id}` })),
    annotations: annotations.map((a, i) => {
      const bbox = a.bbox ?? [0, 0, 10, 10];
      return { id: i + 1, image_id: 1, category_id: 1, iscrowd: 0, area: bbox[2]! * bbox[3]!, bbox, ...a };
    }),
  };
}

/** Every number of `actual` within 1e-12 of `expected`: precision at a true positive is tp / (fp + tp + eps), just under 1. */
function expectClose(actual: Record<string, number>, expected: Record<string, number>): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [k, v] of Object.entries(expected)) expect(actual[k], k).toBeCloseTo(v, 12);
}

function det(bbox: number[], score: number, extra: Partial<CocoDetection> = {}): CocoDetection {
  return { image_id: 1, category_id: 1, bbox, score, ...extra };
}

describe('evaluateCoco on hand-computed cases', () => {
  it('a perfect detection of a small object: 1 for the small range, -1 for the ranges without ground truth', () => {
    const { stats } = evaluateCoco(gt([{ bbox: [0, 0, 10, 10] }]), [det([0, 0, 10, 10], 0.9)]);
    expectClose(stats, { AP: 1, AP50: 1, AP75: 1, APs: 1, APm: -1, APl: -1, AR1: 1, AR10: 1, AR100: 1, ARs: 1, ARm: -1, ARl: -1 });
  });

  it('a false positive ranked above the true positive halves the precision at every recall point', () => {
    // rc = [0, 1], pr = [0, 1/2] -> monotone [1/2, 1/2]: 0.5 at all 101 recall points.
    const { stats } = evaluateCoco(gt([{ bbox: [0, 0, 10, 10] }]), [det([50, 50, 10, 10], 0.9), det([0, 0, 10, 10], 0.8)]);
    expect(stats.AP).toBeCloseTo(0.5, 15);
    expect(stats.AR1).toBe(0); // the only detection kept at maxDets 1 is the false positive
    expect(stats.AR10).toBe(1);
  });

  it('IoU thresholds: a detection with IoU 0.6 counts at 0.50-0.60 only', () => {
    // gt 10x10, det 10x6 inside it: IoU 0.6 -> matched at thresholds 0.50, 0.55, 0.60 (3 of 10).
    const { stats } = evaluateCoco(gt([{ bbox: [0, 0, 10, 10] }]), [det([0, 0, 10, 6], 0.9)]);
    expect(stats.AP50).toBeCloseTo(1, 12);
    expect(stats.AP75).toBe(0);
    expect(stats.AP).toBeCloseTo(0.3, 15);
    expect(COCO_IOU_THRESHOLDS[2]).toBeCloseTo(0.6, 15);
  });

  it('equal scores keep their order in the results list (a stable sort)', () => {
    const truth = gt([{ bbox: [0, 0, 10, 10] }]);
    const tp = det([0, 0, 10, 10], 0.5);
    const fp = det([60, 60, 10, 10], 0.5);
    expect(evaluateCoco(truth, [tp, fp]).stats.AP).toBeCloseTo(1, 12);
    expect(evaluateCoco(truth, [fp, tp]).stats.AP).toBeCloseTo(0.5, 15);
  });

  it('a detection on a crowd region is neither a true nor a false positive, and a crowd absorbs many', () => {
    const truth = gt([{ bbox: [0, 0, 10, 10] }, { bbox: [50, 0, 50, 50], iscrowd: 1 }]);
    // Crowd IoU is intersection / detection area: these two lie inside the crowd box (IoU 1).
    const dets = [det([60, 10, 10, 10], 0.95), det([70, 20, 10, 10], 0.94), det([0, 0, 10, 10], 0.9)];
    expect(evaluateCoco(truth, dets).stats.AP).toBeCloseTo(1, 12);
  });

  it('the area comes from the annotation, with inclusive range bounds', () => {
    // A 40x40 box whose annotation says area 1024 (= 32^2) is both small and medium.
    const { stats } = evaluateCoco(gt([{ bbox: [0, 0, 40, 40], area: 1024 }]), [det([0, 0, 40, 40], 0.9)]);
    expect(stats.APs).toBeCloseTo(1, 12);
    expect(stats.APm).toBeCloseTo(1, 12);
    expect(stats.APl).toBe(-1);
  });

  it("the annotation's `ignore` flag has no effect (cocoapi overwrites it with iscrowd)", () => {
    const dets = [det([0, 0, 10, 10], 0.9)];
    expect(evaluateCoco(gt([{ bbox: [0, 0, 10, 10], ignore: 1 }]), dets).stats).toEqual(evaluateCoco(gt([{ bbox: [0, 0, 10, 10] }]), dets).stats);
  });

  it('only the 100 best detections of an image count', () => {
    const fps = Array.from({ length: 100 }, (_, i) => det([200 + i, 200, 5, 5], 0.9));
    const truth = gt([{ bbox: [0, 0, 10, 10] }]);
    expect(evaluateCoco(truth, [...fps, det([0, 0, 10, 10], 0.1)]).stats.AR100).toBe(0);
    expect(evaluateCoco(truth, [...fps.slice(1), det([0, 0, 10, 10], 0.1)]).stats.AR100).toBe(1);
  });

  it('no detections: 0 where there is ground truth, -1 where there is none', () => {
    const r = evaluateCoco(gt([{ bbox: [0, 0, 10, 10] }], [1, 2], [1, 2]), []);
    expect(r.stats.AP).toBe(0);
    expect(r.perClass).toEqual([
      { categoryId: 1, name: 'cat1', AP: 0, AP50: 0 },
      { categoryId: 2, name: 'cat2', AP: -1, AP50: -1 },
    ]);
    expect(r.pr.precision[0]!.every((p) => p === 0)).toBe(true);
  });

  it('a match with ground-truth id 0 counts as unmatched, as in cocoapi', () => {
    const truth = gt([{ bbox: [0, 0, 10, 10], id: 0 }]);
    expect(evaluateCoco(truth, [det([0, 0, 10, 10], 0.9)]).stats.AP).toBe(0);
  });

  it('per-class AP and PR data', () => {
    const truth = gt([{ bbox: [0, 0, 10, 10] }, { bbox: [20, 20, 10, 10], category_id: 2 }], [1], [2, 1]);
    const r = evaluateCoco(truth, [det([0, 0, 10, 10], 0.9), det([60, 60, 10, 10], 0.9, { category_id: 2 }), det([20, 20, 10, 10], 0.8, { category_id: 2 })]);
    expect(r.perClass.map((c) => [c.categoryId, c.name])).toEqual([
      [1, 'cat1'],
      [2, 'cat2'],
    ]);
    expectClose({ ap1: r.perClass[0]!.AP, ap2: r.perClass[1]!.AP }, { ap1: 1, ap2: 0.5 });
    expect(r.pr.precision).toHaveLength(10);
    expect(r.pr.precision[0]!).toHaveLength(101);
    expect(r.pr.precision[0]![50]).toBeCloseTo(0.75, 15);
  });
});

describe('evaluateCoco input errors', () => {
  it('names a detection on an image the ground truth does not have', () => {
    expect(() => evaluateCoco(gt([]), [det([0, 0, 1, 1], 0.5, { image_id: 7 })], { dtSource: 'dets.json' })).toThrow(
      /^dets\.json: detection \[0\]: image_id 7 is not an image of the ground truth/,
    );
  });
  it('names a detection of an unknown category unless told to ignore them (as pycocotools)', () => {
    const truth = gt([{ bbox: [0, 0, 10, 10] }]);
    const dets = [det([0, 0, 10, 10], 0.5, { category_id: 0 }), det([0, 0, 10, 10], 0.4)];
    expect(() => evaluateCoco(truth, dets)).toThrow(CocoFormatError);
    expect(() => evaluateCoco(truth, dets)).toThrow(/category_id 0 is not a category of the ground truth \(known: 1\); results use COCO category ids/);
    expect(evaluateCoco(truth, dets, { unknownCategories: 'ignore' }).stats.AP).toBeCloseTo(1, 12);
  });
  it('names bad ground truth: missing area, duplicate ids, unknown image, malformed box', () => {
    const noArea = gt([{}]);
    delete noArea.annotations[0]!.area;
    expect(() => evaluateCoco(noArea, [], { gtSource: 'gt.json' })).toThrow(/^gt\.json: annotations\[0\] \(id 1\): "area" is missing/);
    expect(() => evaluateCoco(gt([{ id: 5 }, { id: 5 }]), [])).toThrow(/annotations\[1\] \(id 5\): duplicate id 5/);
    expect(() => evaluateCoco(gt([{ image_id: 9 }]), [])).toThrow(/image_id 9 is not in "images"/);
    expect(() => evaluateCoco(gt([{ bbox: [0, 0, 10] }]), [])).toThrow(/"bbox" must be \[x, y, width, height\]/);
    expect(() => evaluateCoco([], [])).toThrow(/expected a COCO annotations object/);
    expect(() => evaluateCoco(gt([]), {})).toThrow(/expected a COCO results array/);
  });
});

describe('COCO helpers', () => {
  it('IoU is symmetric for non-crowd boxes and within [0, 1]', () => {
    const box = fc.tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 }));
    fc.assert(
      fc.property(box, box, (a, b) => {
        const ab = cocoBoxIou(a, b, false);
        expect(ab).toBe(cocoBoxIou(b, a, false));
        expect(ab).toBeGreaterThanOrEqual(0);
        expect(ab).toBeLessThanOrEqual(1);
        // Against a crowd the union is the detection's area: never smaller than the plain IoU.
        expect(cocoBoxIou(a, b, true)).toBeGreaterThanOrEqual(ab);
      }),
    );
  });

  it("sums pairwise as numpy's add.reduce (exactly, on blocks of 8 and halves past 128)", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { maxLength: 400 }), (xs) => {
        // Reference: numpy's recursion written out plainly.
        const ref = (a: number[]): number => {
          const n = a.length;
          if (n < 8) return a.reduce((s, x) => s + x, 0);
          if (n <= 128) {
            const r = a.slice(0, 8);
            let i = 8;
            for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[i + j]!;
            let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
            for (; i < n; i++) res += a[i]!;
            return res;
          }
          let n2 = Math.floor(n / 2);
          n2 -= n2 % 8;
          return ref(a.slice(0, n2)) + ref(a.slice(n2));
        };
        expect(pairwiseSum(xs)).toBe(ref(xs));
      }),
    );
  });

  it("prints pycocotools' summary lines, rounding exact ties to even like Python", () => {
    const stats = { AP: 0.0625, AP50: 0.1875, AP75: -1, APs: 0.5, APm: 1, APl: 0.12345, AR1: 0, AR10: 0, AR100: 0, ARs: 0, ARm: 0, ARl: 0 } as CocoStats;
    const lines = formatCocoSummary(stats);
    expect(lines[0]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.062');
    expect(lines[1]).toBe(' Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.188');
    expect(lines[2]).toBe(' Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ] = -1.000');
    expect(lines[5]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.123');
    expect(lines[6]).toBe(' Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.000');
    expect(lines[9]).toBe(' Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 0.000');
  });
});
