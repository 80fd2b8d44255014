import { float32Tensor, InvalidSpecError, type Tensor } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { EFFDET_ANCHOR_DEFAULTS, generateAnchors } from './anchors.js';
import { detectionRows, postprocessDetections } from './postprocess.js';

const anchors = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, minLevel: 3, maxLevel: 4, imageSize: 64 });
const C = 2;
const A = anchors.anchorsPerLocation;

/** Head outputs filled with `logit` (class) and 0 (box), batch `n`. */
function outputs(n: number, logit = -10): { cls: Tensor[]; box: Tensor[] } {
  return {
    cls: anchors.levels.map((l) => float32Tensor([n, A * C, l.height, l.width], new Float32Array(n * A * C * l.height * l.width).fill(logit))),
    box: anchors.levels.map((l) => float32Tensor([n, A * 4, l.height, l.width])),
  };
}

/** Sets class logit (level index, image, anchor a, class c, row y, column x). */
function setLogit(t: Tensor[], l: number, b: number, a: number, c: number, y: number, x: number, v: number): void {
  const lv = anchors.levels[l]!;
  (t[l]!.data as Float32Array)[((b * A * C + a * C + c) * lv.height + y) * lv.width + x] = v;
}

function anchorXyxy(l: number, a: number, y: number, x: number): number[] {
  const lv = anchors.levels[l]!;
  const i = lv.offset + (y * lv.width + x) * A + a;
  const [y0, x0, y1, x1] = anchors.boxes.subarray(i * 4, i * 4 + 4);
  return [x0!, y0!, x1!, y1!];
}

/** Decoding recomputes centre and size in float32, so a decoded anchor is the anchor to a few ulps. */
function expectBox(actual: ArrayLike<number>, expected: number[]): void {
  expect(actual.length).toBe(4);
  for (let k = 0; k < 4; k++) expect(actual[k]).toBeCloseTo(expected[k]!, 4);
}

describe('postprocessDetections', () => {
  it('finds the anchor and class of the strongest logit, scores by sigmoid, classes 1-based', () => {
    const { cls, box } = outputs(2);
    setLogit(cls, 0, 1, 4, 1, 2, 3, 3);
    setLogit(cls, 1, 0, 0, 0, 1, 1, 2);
    const [d0, d1] = postprocessDetections(cls, box, { anchors, numClasses: C });
    expect(d1!.classes[0]).toBe(2);
    expectBox(d1!.boxes.subarray(0, 4), anchorXyxy(0, 4, 2, 3));
    expect(d1!.scores[0]).toBe(Math.fround(1 / (1 + Math.exp(-3))));
    expect(d0!.classes[0]).toBe(1);
    expectBox(d0!.boxes.subarray(0, 4), anchorXyxy(1, 0, 1, 1));
    // effdet has no score threshold: the rest of the 100 are low-scoring survivors of NMS.
    expect(d0!.count).toBe(100);
    expect(detectionRows(d0!)[0]).toEqual([...d0!.boxes.subarray(0, 4), Math.fround(1 / (1 + Math.exp(-2))), 1]);
  });

  it('keeps maxDetectionPoints candidates and maxDetectionsPerImage detections', () => {
    const { cls, box } = outputs(1);
    setLogit(cls, 0, 0, 0, 0, 0, 0, 5);
    expect(postprocessDetections(cls, box, { anchors, numClasses: C, maxDetectionPoints: 1 })[0]!.count).toBe(1);
    expect(postprocessDetections(cls, box, { anchors, numClasses: C, maxDetectionsPerImage: 7 })[0]!.count).toBe(7);
  });

  it('applies the box regression', () => {
    const { cls, box } = outputs(1);
    setLogit(cls, 0, 0, 0, 0, 4, 4, 4);
    const lv = anchors.levels[0]!;
    // Shift anchor 0 of cell (4, 4) right by half its width (tx = 0.5, channel 1).
    (box[0]!.data as Float32Array)[(1 * lv.height + 4) * lv.width + 4] = 0.5;
    const [d] = postprocessDetections(cls, box, { anchors, numClasses: C, maxDetectionPoints: 1 });
    const [x0, y0, x1, y1] = anchorXyxy(0, 0, 4, 4);
    const w = x1! - x0!;
    expectBox(d!.boxes.subarray(0, 4), [x0! + w / 2, y0!, x1! + w / 2, y1!]);
  });

  it('suppresses overlaps within a class only', () => {
    const { cls, box } = outputs(1);
    // Anchors 0 (32 x 32) and 1 (44.8 x 22.4) of one cell overlap with IoU 0.547 > 0.5.
    setLogit(cls, 0, 0, 0, 0, 4, 4, 4);
    setLogit(cls, 0, 0, 1, 0, 4, 4, 3);
    setLogit(cls, 0, 0, 1, 1, 4, 4, 3.5);
    const [d] = postprocessDetections(cls, box, { anchors, numClasses: C, maxDetectionPoints: 3 });
    expect([...d!.classes]).toEqual([1, 2]);
    expectBox(d!.boxes.subarray(4, 8), anchorXyxy(0, 1, 4, 4));
  });

  it('clips to the scaled image and maps boxes back with imgScale', () => {
    const { cls, box } = outputs(1);
    setLogit(cls, 1, 0, 8, 0, 3, 3, 5); // a large anchor at the bottom-right, reaching past the image
    const info = { imgScale: 2, imgSize: [100, 90] as const };
    const [d] = postprocessDetections(cls, box, { anchors, numClasses: C, imageInfo: [info] });
    const [x0, y0, x1, y1] = anchorXyxy(1, 8, 3, 3);
    const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi) * 2;
    expectBox(d!.boxes.subarray(0, 4), [clip(x0!, 50), clip(y0!, 45), clip(x1!, 50), clip(y1!, 45)]);
  });

  it('orders equal logits by anchor index', () => {
    const { cls, box } = outputs(1, 0);
    const [d] = postprocessDetections(cls, box, { anchors, numClasses: C, maxDetectionPoints: 1 });
    expectBox(d!.boxes.subarray(0, 4), anchorXyxy(0, 0, 0, 0));
    expect(d!.classes[0]).toBe(1);
  });

  it('runs soft-NMS when asked', () => {
    const { cls, box } = outputs(1);
    setLogit(cls, 0, 0, 0, 0, 4, 4, 4);
    setLogit(cls, 0, 0, 0, 0, 4, 5, 3);
    const [d] = postprocessDetections(cls, box, { anchors, numClasses: C, softNms: true, maxDetectionPoints: 2 });
    expect(d!.count).toBe(2);
    // The second box overlaps the first (IoU 0.6): its score decays by exp(-0.36 / 0.5).
    const iou = 0.6;
    expect(d!.scores[1]).toBeCloseTo((1 / (1 + Math.exp(-3))) * Math.exp(-(iou * iou) / 0.5), 5);
  });

  it('names a head output of the wrong shape', () => {
    const { cls, box } = outputs(1);
    expect(() => postprocessDetections(cls, box, { anchors, numClasses: 3 })).toThrow(InvalidSpecError);
    expect(() => postprocessDetections(cls, box, { anchors, numClasses: 3 })).toThrow(/class_P3.*\[1, 27, 8, 8\]/);
    expect(() => postprocessDetections(cls.slice(1), box, { anchors, numClasses: C })).toThrow(/one class and one box output per anchor level \(2\)/);
  });
});
