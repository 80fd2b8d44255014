/**
 * Non-maximum suppression as torchvision (`ops.nms`, `ops.batched_nms`) and effdet (`batched_soft_nms`, Gaussian
 * soft-NMS) compute it, in float32 step by step. Boxes are [x1, y1, x2, y2] (xyxy), N x 4 row-major.
 *
 * Order: candidates are visited by descending score; equal scores go lowest index first. torchvision sorts with
 * PyTorch's unstable sort, so with exactly equal scores its choice is unspecified (its own docs say so); with distinct
 * scores the results are the same.
 */
import { InvalidSpecError } from '@effnet/core';

const f = Math.fround;

/** IoU of boxes i and j of `boxes` (xyxy) as torchvision's CPU kernel computes it in float32. */
export function boxIou(boxes: ArrayLike<number>, i: number, j: number): number {
  const areaI = f(f(boxes[i * 4 + 2]! - boxes[i * 4]!) * f(boxes[i * 4 + 3]! - boxes[i * 4 + 1]!));
  const areaJ = f(f(boxes[j * 4 + 2]! - boxes[j * 4]!) * f(boxes[j * 4 + 3]! - boxes[j * 4 + 1]!));
  return iouFromAreas(boxes, i, j, areaI, areaJ);
}

function iouFromAreas(boxes: ArrayLike<number>, i: number, j: number, areaI: number, areaJ: number): number {
  const w = Math.max(0, f(Math.min(boxes[i * 4 + 2]!, boxes[j * 4 + 2]!) - Math.max(boxes[i * 4]!, boxes[j * 4]!)));
  const h = Math.max(0, f(Math.min(boxes[i * 4 + 3]!, boxes[j * 4 + 3]!) - Math.max(boxes[i * 4 + 1]!, boxes[j * 4 + 1]!)));
  const inter = f(w * h);
  return f(inter / f(f(areaI + areaJ) - inter));
}

function boxAreas(boxes: ArrayLike<number>, n: number): Float32Array {
  const areas = new Float32Array(n);
  for (let i = 0; i < n; i++) areas[i] = f(boxes[i * 4 + 2]! - boxes[i * 4]!) * f(boxes[i * 4 + 3]! - boxes[i * 4 + 1]!);
  return areas;
}

/** Indices ordered by descending score, equal scores by ascending index. */
function byScore(scores: ArrayLike<number>, indices: number[]): number[] {
  return indices.sort((a, b) => scores[b]! - scores[a]! || a - b);
}

function checkInputs(boxes: ArrayLike<number>, scores: ArrayLike<number>, classes?: ArrayLike<number>): number {
  const n = scores.length;
  if (boxes.length !== n * 4) throw new InvalidSpecError('nms boxes', boxes.length, `4 numbers per score (${n} scores -> ${n * 4})`);
  if (classes && classes.length !== n) throw new InvalidSpecError('nms classes', classes.length, `one class per score (${n})`);
  return n;
}

/**
 * torchvision's `nms(boxes, scores, iouThreshold)`: indices of the kept boxes, by descending score. A box is dropped
 * when its IoU with a kept, higher-scoring box is > iouThreshold. `subset` restricts it to those indices.
 */
export function nms(boxes: ArrayLike<number>, scores: ArrayLike<number>, iouThreshold: number, subset?: number[]): number[] {
  const n = checkInputs(boxes, scores);
  const order = byScore(scores, subset ? [...subset] : Array.from({ length: n }, (_, i) => i));
  return greedy(boxes, boxAreas(boxes, n), order, iouThreshold, new Uint8Array(n));
}

/** torchvision's NMS loop over `order` (best first); `suppressed` is scratch space, all 0 on entry for `order`. */
function greedy(boxes: ArrayLike<number>, areas: Float32Array, order: number[], iouThreshold: number, suppressed: Uint8Array): number[] {
  const keep: number[] = [];
  for (let a = 0; a < order.length; a++) {
    const i = order[a]!;
    if (suppressed[i]) continue;
    keep.push(i);
    for (let b = a + 1; b < order.length; b++) {
      const j = order[b]!;
      if (!suppressed[j] && iouFromAreas(boxes, i, j, areas[i]!, areas[j]!) > iouThreshold) suppressed[j] = 1;
    }
  }
  return keep;
}

/** Copies of the boxes moved apart by class (torchvision's and effdet's "coordinate trick"): box + class * (max + 1). */
function offsetByClass(boxes: ArrayLike<number>, classes: ArrayLike<number>, n: number): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < n * 4; i++) max = Math.max(max, f(boxes[i]!));
  const step = f(max + 1);
  const out = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const off = f(classes[i]! * step);
    for (let k = 0; k < 4; k++) out[i * 4 + k] = f(boxes[i * 4 + k]!) + off;
  }
  return out;
}

/**
 * torchvision's `batched_nms`: NMS within each class, kept indices by descending score. Like torchvision on the CPU,
 * more than 1000 boxes run NMS class by class; up to 1000 run one NMS on boxes offset by class.
 */
export function batchedNms(boxes: ArrayLike<number>, scores: ArrayLike<number>, classes: ArrayLike<number>, iouThreshold: number): number[] {
  const n = checkInputs(boxes, scores, classes);
  if (n === 0) return [];
  if (n * 4 <= 4000) return nms(offsetByClass(boxes, classes, n), scores, iouThreshold);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    let list = byClass.get(classes[i]!);
    if (!list) byClass.set(classes[i]!, (list = []));
    list.push(i);
  }
  const areas = boxAreas(boxes, n);
  const suppressed = new Uint8Array(n);
  const keep: number[] = [];
  for (const subset of byClass.values()) keep.push(...greedy(boxes, areas, byScore(scores, subset), iouThreshold, suppressed));
  return byScore(scores, keep);
}

export interface SoftNmsOptions {
  /** 'gaussian' (default, effdet's): score *= exp(-iou^2 / sigma); 'linear': score *= 1 - iou where iou > iouThreshold. */
  method?: 'gaussian' | 'linear';
  /** Gaussian width (default 0.5). */
  sigma?: number;
  /** IoU above which the linear method decays (default 0.3, effdet's call). */
  iouThreshold?: number;
  /** Boxes whose decayed score falls to or below this are dropped (default 0.001). */
  scoreThreshold?: number;
}

export interface SoftNmsResult {
  /** Kept indices in the order picked (descending decayed score). */
  indices: number[];
  /** Their decayed scores (float32). */
  scores: Float32Array;
}

/**
 * effdet's `batched_soft_nms` (Gaussian soft-NMS, sigma 0.5, score threshold 0.001, boxes offset by class as
 * `batched_nms`' coordinate trick): repeatedly keeps the highest remaining score and decays the rest by their IoU with
 * it.
 */
export function batchedSoftNms(boxes: ArrayLike<number>, scores: ArrayLike<number>, classes: ArrayLike<number>, options: SoftNmsOptions = {}): SoftNmsResult {
  const n = checkInputs(boxes, scores, classes);
  const gaussian = (options.method ?? 'gaussian') === 'gaussian';
  const sigma = options.sigma ?? 0.5;
  // PyTorch compares a float32 tensor with a Python float in float32.
  const iouThreshold = f(options.iouThreshold ?? 0.3);
  const scoreThreshold = f(options.scoreThreshold ?? 0.001);
  if (!(sigma > 0)) throw new InvalidSpecError('soft-NMS sigma', sigma, 'a positive number');
  if (n === 0) return { indices: [], scores: new Float32Array(0) };
  const shifted = offsetByClass(boxes, classes, n);
  const areas = boxAreas(shifted, n);
  const current = Float32Array.from(scores);
  const picked = new Float32Array(n);
  const picks: number[] = [];
  const loop = (remain: number[]) => {
    while (remain.length > 0) {
      // argmax: the first of the largest, in index order.
      let best = 0;
      for (let r = 1; r < remain.length; r++) if (current[remain[r]!]! > current[remain[best]!]!) best = r;
      const t = remain[best]!;
      picks.push(t);
      picked[t] = current[t]!;
      const next: number[] = [];
      for (let r = 0; r < remain.length; r++) {
        const j = remain[r]!;
        const inter = iouIntersection(shifted, t, j);
        const iou = inter > 0 ? f(inter / f(f(areas[t]! + areas[j]!) - inter)) : 0;
        let decay: number;
        if (gaussian) decay = f(Math.exp(f(-f(iou * iou) / sigma)));
        else decay = iou > iouThreshold ? f(1 - iou) : 1;
        current[j] = current[j]! * decay;
        if (r !== best && current[j]! > scoreThreshold) next.push(j);
      }
      remain = next;
    }
  };
  let min = Infinity;
  for (let i = 0; i < n * 4; i++) min = Math.min(min, boxes[i]!);
  if (!(min >= 0)) {
    // Negative coordinates: offset boxes of neighbouring classes can overlap (and decay each other) in effdet too.
    loop(Array.from({ length: n }, (_, i) => i));
    return { indices: picks, scores: Float32Array.from(picks, (i) => picked[i]!) };
  }
  // With coordinates >= 0, offset boxes of different classes are at least 1 apart and never decay each other: each
  // class runs on its own and the picks merge by (score, index), the order of effdet's single loop. That loop's first
  // pass drops every score at or below the threshold except the overall best; drop them up front.
  let top = 0;
  for (let i = 1; i < n; i++) if (current[i]! > current[top]!) top = i;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (i !== top && !(current[i]! > scoreThreshold)) continue;
    let list = byClass.get(classes[i]!);
    if (!list) byClass.set(classes[i]!, (list = []));
    list.push(i);
  }
  for (const remain of byClass.values()) loop(remain);
  picks.sort((a, b) => picked[b]! - picked[a]! || a - b);
  return { indices: picks, scores: Float32Array.from(picks, (i) => picked[i]!) };
}

function iouIntersection(boxes: Float32Array, i: number, j: number): number {
  const w = Math.max(0, f(Math.min(boxes[i * 4 + 2]!, boxes[j * 4 + 2]!) - Math.max(boxes[i * 4]!, boxes[j * 4]!)));
  const h = Math.max(0, f(Math.min(boxes[i * 4 + 3]!, boxes[j * 4 + 3]!) - Math.max(boxes[i * 4 + 1]!, boxes[j * 4 + 1]!)));
  return f(w * h);
}
