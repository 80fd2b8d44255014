import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../testing/peers.js';
import { COCO_IOU_THRESHOLDS, COCO_RECALL_THRESHOLDS, evaluateCoco, formatCocoSummary, type CocoEvalResult } from '../src/detection/coco-eval.js';
import { cocoCaseArbitrary, type CocoCase } from './coco-cases.js';

interface Reference {
  iouThrs: number[];
  recThrs: number[];
  results: { stats: number[]; perClass: { categoryId: number; AP: number; AP50: number }[]; recall: number[]; pr: number[][]; summary: string[] }[];
}

const NUM_CASES = 320;

/**
 * evaluateCoco against pycocotools' COCOeval on NUM_CASES random cases (fast-check generators, fixed seed), all
 * evaluated by one Python process. Every number must agree to 1e-9; the largest difference is printed.
 */
describeWithPeers(['pycocotools', 'numpy'], 'evaluateCoco against pycocotools COCOeval', () => {
  let cases: CocoCase[];
  let ref: Reference;
  let ours: CocoEvalResult[];
  let dir: string;

  beforeAll(() => {
    cases = fc.sample(cocoCaseArbitrary(), { seed: 20240613, numRuns: NUM_CASES });
    dir = mkdtempSync(join(tmpdir(), 'effnet-coco-'));
    writeFileSync(join(dir, 'cases.json'), JSON.stringify({ cases: cases.map(({ gt, dt }) => ({ gt, dt })) }));
    runPython('scripts/coco_eval_reference.py', [join(dir, 'cases.json'), join(dir, 'out.json')]);
    ref = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8'));
    ours = cases.map((c) => evaluateCoco(c.gt, c.dt, { unknownCategories: c.unknownCategories ? 'ignore' : 'error' }));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('uses the same IoU thresholds and recall points, bit for bit', () => {
    expect([...COCO_IOU_THRESHOLDS]).toEqual(ref.iouThrs);
    expect([...COCO_RECALL_THRESHOLDS]).toEqual(ref.recThrs);
  });

  it('prints the same 12 summary lines as summarize()', () => {
    ours.forEach((r, i) => expect(formatCocoSummary(r.stats), `case ${i}`).toEqual(ref.results[i]!.summary));
  });

  it(`gives the 12 stats, per-class AP/AP50, recall and PR curves of COCOeval on ${NUM_CASES} random cases`, () => {
    let maxDiff = 0;
    let numbers = 0;
    const note = (a: number, b: number, what: string, i: number) => {
      const d = Math.abs(a - b);
      if (!(d <= 1e-9)) throw new Error(`case ${i}: ${what}: effnet ${a} vs pycocotools ${b}\n${JSON.stringify(cases[i])}`);
      maxDiff = Math.max(maxDiff, d);
      numbers++;
    };
    ours.forEach((r, i) => {
      const want = ref.results[i]!;
      r.statsArray.forEach((v, j) => note(v, want.stats[j]!, `stat ${j}`, i));
      expect(r.perClass.map((c) => c.categoryId)).toEqual(want.perClass.map((c) => c.categoryId));
      r.perClass.forEach((c, k) => {
        note(c.AP, want.perClass[k]!.AP, `AP of category ${c.categoryId}`, i);
        note(c.AP50, want.perClass[k]!.AP50, `AP50 of category ${c.categoryId}`, i);
      });
      expect(r.accumulated.recall.length).toBe(want.recall.length);
      r.accumulated.recall.forEach((v, j) => note(v, want.recall[j]!, `recall[${j}]`, i));
      r.pr.precision.forEach((row, t) => row.forEach((v, j) => note(v, want.pr[t]![j]!, `pr[${t}][${j}]`, i)));
    });
    // The cases must exercise what they claim to: non-trivial APs, -1s, and more than 100 detections on an image.
    const aps = ours.map((r) => r.stats.AP);
    expect(aps.some((v) => v > 0.05 && v < 0.95)).toBe(true);
    expect(ours.some((r) => r.statsArray.includes(-1))).toBe(true);
    expect(cases.some((c) => c.gt.images.some((im) => c.dt.filter((d) => d.image_id === im.id).length > 100))).toBe(true);
    expect(cases.some((c) => c.unknownCategories)).toBe(true);
    console.log(`evaluateCoco vs pycocotools: ${numbers} numbers over ${cases.length} cases, max |diff| = ${maxDiff}`);
  });
});
