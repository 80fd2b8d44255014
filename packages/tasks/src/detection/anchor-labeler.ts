/**
 * Training targets per anchor, as effdet's `AnchorLabeler.label_anchors` (automl's anchor labeler): IoU between every
 * ground-truth box and every anchor (float32, effdet's IouSimilarity), ArgMaxMatcher (each anchor takes its best box;
 * IoU >= matchThreshold is positive, < unmatchedThreshold negative, in between ignored; with forceMatchForEachRow,
 * every box also claims the anchor it overlaps most, the first such anchor, even at IoU 0), class targets per anchor
 * and box targets encoded with the Faster R-CNN coder (no scale factors, eps 1e-7).
 *
 * effdet builds its labeler with unmatched threshold = match threshold = 0.5 (so nothing is ignored) and forced
 * matches; those are the defaults here. RetinaNet's 0.4/0.5 split is `unmatchedThreshold: 0.4`: anchors in between
 * get class target -2 (effdet's loss skips -2; effdet's own labeler would mark them -1 because it gathers the same
 * value for ignored and unmatched anchors).
 */
import { InvalidSpecError } from '@effnet/core';
import type { Anchors } from './anchors.js';
import { encodeBoxInto } from './box-coder.js';

const f = Math.fround;

export interface AnchorLabelerOptions {
  /** IoU at or above which an anchor is positive (0.5). */
  matchThreshold?: number;
  /** IoU below which an anchor is negative (default: matchThreshold, as effdet). */
  unmatchedThreshold?: number;
  /** Every box claims its best anchor whatever the IoU (default true, as effdet). */
  forceMatchForEachRow?: boolean;
}

export interface AnchorTargets {
  /** Per level, [H, W, anchorsPerLocation]: class index (0-based) of positive anchors, -1 negative, -2 ignored. */
  classTargets: Int32Array[];
  /** Per level, [H, W, anchorsPerLocation * 4]: [ty, tx, th, tw] of positive anchors, 0 elsewhere. */
  boxTargets: Float32Array[];
  /** Number of positive anchors. */
  numPositives: number;
  /** Per anchor: index of its box, -1 negative, -2 ignored (effdet's match_results). */
  matches: Int32Array;
}

/**
 * Labels `anchors` against an image's ground truth.
 *
 * @param boxes [G, 4] boxes [x1, y1, x2, y2] in model-input pixels
 * @param classes [G] 0-based class indices; negative entries (padding) are left out, as effdet's filter_valid
 */
export function labelAnchors(anchors: Anchors, boxes: ArrayLike<number>, classes: ArrayLike<number>, options: AnchorLabelerOptions = {}): AnchorTargets {
  // PyTorch compares float32 IoUs with Python floats in float32.
  const matchThr = f(options.matchThreshold ?? 0.5);
  const unmatchedThr = f(options.unmatchedThreshold ?? options.matchThreshold ?? 0.5);
  const force = options.forceMatchForEachRow ?? true;
  if (!(unmatchedThr <= matchThr)) throw new InvalidSpecError('unmatchedThreshold', unmatchedThr, `at most matchThreshold (${matchThr})`);
  if (boxes.length !== classes.length * 4) throw new InvalidSpecError('ground-truth boxes', boxes.length, `4 numbers per class (${classes.length} classes)`);

  // Valid boxes as float32 yxyx, with their areas.
  const keep: number[] = [];
  for (let g = 0; g < classes.length; g++) if (classes[g]! >= 0) keep.push(g);
  const G = keep.length;
  const gt = new Float32Array(G * 4);
  keep.forEach((g, i) => {
    gt[i * 4] = boxes[g * 4 + 1]!;
    gt[i * 4 + 1] = boxes[g * 4]!;
    gt[i * 4 + 2] = boxes[g * 4 + 3]!;
    gt[i * 4 + 3] = boxes[g * 4 + 2]!;
  });
  const gtArea = new Float32Array(G);
  for (let i = 0; i < G; i++) gtArea[i] = f(gt[i * 4 + 2]! - gt[i * 4]!) * f(gt[i * 4 + 3]! - gt[i * 4 + 1]!);

  const N = anchors.count;
  const ab = anchors.boxes;
  const matches = new Int32Array(N).fill(-1);
  // Per box, its best anchor (first of the maxima) for the forced matches.
  const bestAnchor = new Int32Array(G);
  const bestAnchorIou = new Float64Array(G).fill(-Infinity);
  for (let n = 0; n < N; n++) {
    const y0 = ab[n * 4]!;
    const x0 = ab[n * 4 + 1]!;
    const y1 = ab[n * 4 + 2]!;
    const x1 = ab[n * 4 + 3]!;
    const area = f(f(y1 - y0) * f(x1 - x0));
    let best = -Infinity;
    let bestG = 0;
    for (let g = 0; g < G; g++) {
      const h = Math.max(f(Math.min(y1, gt[g * 4 + 2]!) - Math.max(y0, gt[g * 4]!)), 0);
      const w = Math.max(f(Math.min(x1, gt[g * 4 + 3]!) - Math.max(x0, gt[g * 4 + 1]!)), 0);
      const inter = f(h * w);
      const iou = inter === 0 ? 0 : f(inter / f(f(gtArea[g]! + area) - inter));
      if (iou > best) {
        best = iou;
        bestG = g;
      }
      if (iou > bestAnchorIou[g]!) {
        bestAnchorIou[g] = iou;
        bestAnchor[g] = n;
      }
    }
    if (G > 0) matches[n] = best < unmatchedThr ? -1 : best < matchThr ? -2 : bestG;
  }
  if (force) {
    // Later boxes first, so that an anchor claimed by several boxes goes to the first of them (torch.max over rows).
    for (let g = G - 1; g >= 0; g--) matches[bestAnchor[g]!] = g;
  }

  const cls = new Int32Array(N);
  const box = new Float32Array(N * 4);
  let numPositives = 0;
  for (let n = 0; n < N; n++) {
    const m = matches[n]!;
    if (m >= 0) {
      numPositives++;
      cls[n] = classes[keep[m]!]!;
      encodeBoxInto(gt, m * 4, ab, n * 4, box, n * 4);
    } else {
      cls[n] = m;
    }
  }
  return {
    classTargets: anchors.levels.map((lv) => cls.subarray(lv.offset, lv.offset + lv.count)),
    boxTargets: anchors.levels.map((lv) => box.subarray(lv.offset * 4, (lv.offset + lv.count) * 4)),
    numPositives,
    matches: Int32Array.from(matches, (m) => (m >= 0 ? keep[m]! : m)),
  };
}
