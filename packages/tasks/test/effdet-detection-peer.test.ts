import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { readNpy, type Tensor } from '@effnet/core';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../testing/peers.js';
import { labelAnchors } from '../src/detection/anchor-labeler.js';
import { EFFDET_ANCHOR_DEFAULTS, generateAnchors, type AnchorOptions } from '../src/detection/anchors.js';
import { decodeBoxes, encodeBoxes } from '../src/detection/box-coder.js';
import { batchedNms, batchedSoftNms } from '../src/detection/nms.js';
import { postprocessDetections } from '../src/detection/postprocess.js';

const ANCHORS: Partial<AnchorOptions>[] = [
  { imageSize: 512 },
  { imageSize: [384, 640] },
  { imageSize: 768, anchorScale: [4, 4.5, 5, 5.5, 6] },
  { imageSize: [320, 200], minLevel: 2, maxLevel: 6, numScales: 2, aspectRatios: [1.0, 2.0, 0.5] },
  { imageSize: 100 },
];

interface PostprocessCase {
  imageSize: number | [number, number];
  numClasses: number;
  batch: number;
  softNms: boolean;
  maxDetectionPoints?: number;
  imgScale?: number[];
  imgSize?: [number, number][];
  seed: number;
}
const POSTPROCESS: PostprocessCase[] = [
  { imageSize: 256, numClasses: 5, batch: 2, softNms: false, seed: 1 },
  { imageSize: [256, 384], numClasses: 3, batch: 2, softNms: false, imgScale: [1.5, 0.75], imgSize: [[576, 380], [250, 192]], seed: 2 },
  { imageSize: 128, numClasses: 90, batch: 1, softNms: false, seed: 3 },
  // Fewer than 1000 candidates: torchvision's batched_nms takes its coordinate-offset path.
  { imageSize: 256, numClasses: 4, batch: 1, softNms: false, maxDetectionPoints: 800, seed: 4 },
  // Soft-NMS on clipped boxes (classes never interact), and unclipped (negative coordinates: offset boxes of
  // neighbouring classes overlap and decay each other in effdet, and here).
  { imageSize: 256, numClasses: 2, batch: 1, softNms: true, maxDetectionPoints: 1500, imgScale: [2], imgSize: [[512, 500]], seed: 5 },
  { imageSize: 128, numClasses: 3, batch: 1, softNms: true, maxDetectionPoints: 900, seed: 6 },
];

const LABELER = [
  { imageSize: 256, numClasses: 4, numBoxes: 8, seed: 11 },
  { imageSize: [256, 384] as [number, number], numClasses: 3, numBoxes: 20, seed: 12 },
  { imageSize: 128, numClasses: 2, numBoxes: 1, seed: 13 },
  { imageSize: 256, numClasses: 5, numBoxes: 12, unmatchedThreshold: 0.4, seed: 14 },
];

/**
 * NMS inputs: clustered boxes, some with negative coordinates (offset boxes of neighbouring classes then overlap in
 * torchvision's coordinate trick and in effdet's soft-NMS), distinct scores, a few classes; 40 to 1500 boxes (both of
 * batched_nms' paths).
 */
const NMS_CASES = fc.sample(
  fc.gen().map((g) => {
    const n = g(fc.constantFrom, 40, 300, 1100, 1500);
    const shift = g(fc.constantFrom, 0, -30);
    const ranks = g(() => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }));
    const boxes: number[] = [];
    const classes: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = g(fc.integer, { min: 0, max: 100 }) + shift;
      const y = g(fc.integer, { min: 0, max: 100 }) + shift;
      boxes.push(x, y, x + g(fc.integer, { min: 1, max: 60 }), y + g(fc.integer, { min: 1, max: 60 }));
      classes.push(g(fc.integer, { min: 0, max: 3 }));
    }
    return { boxes, scores: ranks.map((r) => Math.fround(0.0005 + r / n)), classes };
  }),
  { seed: 99, numRuns: 12 },
);

/** Max |a - b| / max(1, |b|). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return d;
}

/**
 * effdet's Anchors, decode_box_outputs, FasterRcnnBoxCoder.encode, _post_process + _batch_detection and
 * AnchorLabeler.label_anchors (scripts/effdet_detection_reference.py, one Python run) against effnet's.
 */
describeWithPeers(['torch', 'torchvision', 'effdet'], 'detection math against effdet', () => {
  let dir: string;
  const load = (name: string) => readNpy(join(dir, `${name}.npy`));
  const report: string[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'effnet-effdet-'));
    const spec = { anchors: ANCHORS, coder: { seed: 7, n: 5000 }, postprocess: POSTPROCESS, labeler: LABELER, nms: NMS_CASES };
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    runPython('scripts/effdet_detection_reference.py', [join(dir, 'spec.json'), dir]);
  });
  afterAll(() => {
    console.log(`effdet parity: ${report.join('; ')}`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('generates the same anchors, bit for bit', async () => {
    for (const [i, o] of ANCHORS.entries()) {
      const ours = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, ...o } as AnchorOptions);
      const ref = await load(`anchors_${i}`);
      expect(ref.shape).toEqual([ours.count, 4]);
      expect(relDiff(ours.boxes, ref.data as Float32Array), `anchors ${JSON.stringify(o)}`).toBe(0);
    }
    report.push(`anchors exact (${ANCHORS.length} configs)`);
  });

  it('decodes and encodes boxes as effdet (float32, to 1e-6)', async () => {
    const anchors = (await load('coder_anchors')).data as Float32Array;
    const decoded = decodeBoxes((await load('coder_codes')).data as Float32Array, anchors, { xyxy: true });
    const dDec = relDiff(decoded, (await load('coder_decoded')).data as Float32Array);
    const encoded = encodeBoxes((await load('coder_boxes')).data as Float32Array, anchors);
    const dEnc = relDiff(encoded, (await load('coder_encoded')).data as Float32Array);
    // Decoding subtracts half the box size from the centre: a one-ulp difference in exp (PyTorch's vectorised expf vs
    // a correctly rounded one) shows up relative to the box's scale, not to a small corner coordinate.
    const ref = (await load('coder_decoded')).data as Float32Array;
    let scale = 0;
    for (const v of ref) scale = Math.max(scale, Math.abs(v));
    let dAbs = 0;
    let exact = 0;
    decoded.forEach((v, j) => {
      dAbs = Math.max(dAbs, Math.abs(v - ref[j]!));
      if (v === ref[j]) exact++;
    });
    report.push(
      `decode max |diff| ${dAbs.toExponential(2)} on coordinates up to ${scale.toFixed(0)} (${((100 * exact) / ref.length).toFixed(2)}% bit-equal), ` +
        `max rel diff ${dDec.toExponential(2)}; encode max rel diff ${dEnc.toExponential(2)}`,
    );
    expect(dAbs / scale).toBeLessThan(1e-6);
    expect(dEnc).toBeLessThan(1e-6);
  });

  it('post-processes raw head outputs into the same detections (top-k, decode, clip, NMS or soft-NMS, rescale)', async () => {
    let worst = 0;
    for (const [i, c] of POSTPROCESS.entries()) {
      const anchors = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: c.imageSize });
      const cls: Tensor[] = [];
      const box: Tensor[] = [];
      for (let l = 0; l < anchors.levels.length; l++) {
        cls.push(await load(`pp_${i}_class_${l}`));
        box.push(await load(`pp_${i}_box_${l}`));
      }
      const imageInfo = c.imgScale?.map((s, b) => ({ imgScale: s, imgSize: c.imgSize![b]! }));
      const dets = postprocessDetections(cls, box, { anchors, numClasses: c.numClasses, softNms: c.softNms, maxDetectionPoints: c.maxDetectionPoints, imageInfo });
      const ref = await load(`pp_${i}_det`);
      const rows = ref.data as Float32Array;
      for (let b = 0; b < c.batch; b++) {
        const d = dets[b]!;
        const refCount = Array.from({ length: 100 }, (_, r) => rows[(b * 100 + r) * 6 + 4]! > 0).filter(Boolean).length;
        expect(d.count, `case ${i} image ${b}: detections`).toBe(refCount);
        for (let r = 0; r < d.count; r++) {
          const o = (b * 100 + r) * 6;
          expect(d.classes[r], `case ${i} image ${b} row ${r}: class`).toBe(rows[o + 5]);
          const got = [...d.boxes.subarray(r * 4, r * 4 + 4), d.scores[r]!];
          const want = [...rows.subarray(o, o + 5)];
          const diff = relDiff(got, want);
          expect(diff, `case ${i} image ${b} row ${r}: ${got} vs ${want}`).toBeLessThan(1e-5);
          worst = Math.max(worst, diff);
        }
      }
    }
    report.push(`postprocess: same detections and classes in ${POSTPROCESS.length} cases, boxes/scores max rel diff ${worst.toExponential(2)}`);
  });

  it("keeps the boxes torchvision's batched_nms and effdet's batched_soft_nms keep", () => {
    const ref = JSON.parse(readFileSync(join(dir, 'nms.json'), 'utf8')) as { nms: number[]; softIndices: number[]; softScores: number[] }[];
    let worst = 0;
    let softKept = 0;
    NMS_CASES.forEach((c, i) => {
      expect(batchedNms(c.boxes, c.scores, c.classes, 0.5), `case ${i} (${c.scores.length} boxes)`).toEqual(ref[i]!.nms);
      const soft = batchedSoftNms(c.boxes, c.scores, c.classes);
      expect(soft.indices, `case ${i} soft-NMS`).toEqual(ref[i]!.softIndices);
      worst = Math.max(worst, relDiff(soft.scores, ref[i]!.softScores));
      softKept += soft.indices.length;
    });
    report.push(`NMS: same kept boxes in ${NMS_CASES.length} random cases (40-1500 boxes); soft-NMS same ${softKept} picks, scores max rel diff ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });

  it('labels anchors as AnchorLabeler: matches, class targets, box targets, positives', async () => {
    let worst = 0;
    for (const [i, c] of LABELER.entries()) {
      const anchors = generateAnchors({ ...EFFDET_ANCHOR_DEFAULTS, imageSize: c.imageSize });
      const yxyx = (await load(`lab_${i}_boxes`)).data as Float32Array;
      const xyxy = new Float32Array(yxyx.length);
      for (let g = 0; g < yxyx.length; g += 4) xyxy.set([yxyx[g + 1]!, yxyx[g]!, yxyx[g + 3]!, yxyx[g + 2]!], g);
      const classes = Array.from((await load(`lab_${i}_classes`)).data as Int32Array, (k) => k - 1);
      const t = labelAnchors(anchors, xyxy, classes, { unmatchedThreshold: c.unmatchedThreshold });
      const refMatch = (await load(`lab_${i}_match`)).data as Int32Array;
      expect([...t.matches]).toEqual([...refMatch]);
      expect(t.numPositives).toBe(((await load(`lab_${i}_npos`)).data as Float32Array)[0]);
      expect(refMatch.some((m) => m === -2)).toBe(c.unmatchedThreshold !== undefined);
      for (let l = 0; l < anchors.levels.length; l++) {
        const refCls = await load(`lab_${i}_cls_${l}`);
        const lv = anchors.levels[l]!;
        expect(refCls.shape).toEqual([lv.height, lv.width, anchors.anchorsPerLocation]);
        // effdet marks ignored anchors -1 (its labeler gathers one value for unmatched and ignored); effnet -2.
        const want = Array.from(refCls.data as Int32Array, (v, j) => (refMatch[lv.offset + j] === -2 ? -2 : v));
        expect([...t.classTargets[l]!]).toEqual(want);
        worst = Math.max(worst, relDiff(t.boxTargets[l]!, (await load(`lab_${i}_box_${l}`)).data as Float32Array));
      }
    }
    report.push(`labeler: same matches and classes in ${LABELER.length} cases, box targets max rel diff ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });
});
