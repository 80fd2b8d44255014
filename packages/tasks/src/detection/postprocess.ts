/**
 * EfficientDet post-processing as effdet's DetBenchPredict runs it (`_post_process` then `_batch_detection` /
 * `generate_detections`), on raw head outputs in effdet's layout: per level, class logits [N, A*C, H, W] and box
 * regressions [N, A*4, H, W] (channel a*C + c, a*4 + k; anchors ordered as `generateAnchors`).
 *
 * Per image: the top `maxDetectionPoints` (5000) logits over all levels, anchors and classes (on logits, before the
 * sigmoid); their boxes decoded against the anchors (xyxy, float32); when the image's `imageInfo` is given, boxes
 * clipped to the scaled image (imgSize / imgScale) and, after NMS, multiplied by imgScale back to original pixels;
 * scores = sigmoid(logit); class-aware NMS at IoU 0.5 (torchvision's batched_nms) or Gaussian soft-NMS; at most
 * `maxDetectionsPerImage` (100) detections by descending score, classes 1-based (effdet's `classes + 1`).
 *
 * Differences from effdet: equal logits or scores are ordered by index (PyTorch's topk/sort leave the order of ties
 * unspecified); fewer candidates than maxDetectionPoints are all taken (effdet's topk would fail); the result holds
 * only real detections (effdet pads to 100 rows with zeros).
 */
import { InvalidSpecError, type Tensor } from '@effnet/core';
import type { Anchors } from './anchors.js';
import { decodeBoxInto } from './box-coder.js';
import { batchedNms, batchedSoftNms, type SoftNmsOptions } from './nms.js';

const f = Math.fround;

/** effdet's img_info for one image: imgScale = original size / model size (1 / the resize factor), imgSize = original [width, height]. */
export interface ImageInfo {
  imgScale: number;
  imgSize: readonly [width: number, height: number];
}

export interface PostprocessOptions {
  anchors: Anchors;
  numClasses: number;
  /** Candidates kept before NMS (effdet's max_detection_points, 5000). */
  maxDetectionPoints?: number;
  /** Detections kept after NMS (effdet's max_det_per_image, 100). */
  maxDetectionsPerImage?: number;
  /** IoU above which NMS drops a box (0.5). */
  iouThreshold?: number;
  /** Gaussian soft-NMS instead of NMS (effdet's soft_nms; sigma 0.5, score threshold 0.001 unless given). */
  softNms?: boolean | SoftNmsOptions;
  /** Per image of the batch: map boxes back to the original image (see ImageInfo); without it boxes stay in model pixels. */
  imageInfo?: readonly (ImageInfo | undefined)[];
}

/** One image's detections, best first. */
export interface Detections {
  count: number;
  /** [count, 4] x1, y1, x2, y2. */
  boxes: Float32Array;
  /** Sigmoid scores (decayed scores with soft-NMS). */
  scores: Float32Array;
  /** Class ids, 1-based as effdet's output (class index + 1). */
  classes: Int32Array;
}

/** effdet's output rows [x1, y1, x2, y2, score, class] (without its zero padding). */
export function detectionRows(d: Detections): number[][] {
  return Array.from({ length: d.count }, (_, i) => [...d.boxes.subarray(i * 4, i * 4 + 4), d.scores[i]!, d.classes[i]!]);
}

interface LevelView {
  cls: Float32Array;
  box: Float32Array;
  h: number;
  w: number;
  offset: number;
}

function checkOutputs(classOutputs: readonly Tensor[], boxOutputs: readonly Tensor[], o: PostprocessOptions): { batch: number; levels: LevelView[] } {
  const { anchors, numClasses: C } = o;
  const A = anchors.anchorsPerLocation;
  const L = anchors.levels.length;
  if (!(Number.isInteger(C) && C >= 1)) throw new InvalidSpecError('numClasses', C, 'a positive integer');
  if (classOutputs.length !== L || boxOutputs.length !== L) {
    throw new InvalidSpecError('detection outputs', { class: classOutputs.length, box: boxOutputs.length }, `one class and one box output per anchor level (${L})`);
  }
  const batch = classOutputs[0]!.shape[0]!;
  const levels = anchors.levels.map((lv, l) => {
    const c = classOutputs[l]!;
    const b = boxOutputs[l]!;
    const want = (ch: number) => [batch, ch, lv.height, lv.width];
    for (const [t, ch, name] of [[c, A * C, `class_P${lv.level}`], [b, A * 4, `box_P${lv.level}`]] as const) {
      if (t.dtype !== 'float32' || t.shape.length !== 4 || want(ch).some((d, i) => d !== t.shape[i])) {
        throw new InvalidSpecError(name, { dtype: t.dtype, shape: t.shape }, `float32 [${want(ch).join(', ')}] (N, anchors * ${ch / A}, H, W)`);
      }
    }
    return { cls: c.data as Float32Array, box: b.data as Float32Array, h: lv.height, w: lv.width, offset: lv.offset };
  });
  if (o.imageInfo && o.imageInfo.length !== batch) throw new InvalidSpecError('imageInfo', o.imageInfo.length, `one entry per image of the batch (${batch})`);
  return { batch, levels };
}

/**
 * The k largest logits of image `b` over all levels, as flat indices anchor * C + class, best first (equal values:
 * lower index first). A min-heap of k entries: almost every logit is rejected by one comparison with its root.
 */
function topLogits(levels: LevelView[], b: number, A: number, C: number, k: number): { values: Float32Array; indices: Int32Array } {
  const hv = new Float64Array(k);
  const hi = new Int32Array(k);
  let size = 0;
  // a is worse than b: smaller value, or the same value and a larger index.
  const worse = (va: number, ia: number, vb: number, ib: number) => va < vb || (va === vb && ia > ib);
  const siftDown = (pos: number) => {
    const v = hv[pos]!;
    const id = hi[pos]!;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= size) break;
      if (child + 1 < size && worse(hv[child + 1]!, hi[child + 1]!, hv[child]!, hi[child]!)) child++;
      if (!worse(hv[child]!, hi[child]!, v, id)) break;
      hv[pos] = hv[child]!;
      hi[pos] = hi[child]!;
      pos = child;
    }
    hv[pos] = v;
    hi[pos] = id;
  };
  const push = (v: number, id: number) => {
    let pos = size++;
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      if (!worse(v, id, hv[parent]!, hi[parent]!)) break;
      hv[pos] = hv[parent]!;
      hi[pos] = hi[parent]!;
      pos = parent;
    }
    hv[pos] = v;
    hi[pos] = id;
  };
  // The root (worst kept) value, -Infinity until the heap is full: the only comparison most logits see.
  let rootValue = -Infinity;
  for (const lv of levels) {
    const hw = lv.h * lv.w;
    const base = b * A * C * hw;
    const data = lv.cls;
    for (let ch = 0; ch < A * C; ch++) {
      const a = (ch / C) | 0;
      const c = ch - a * C;
      const row = base + ch * hw;
      const idBase = lv.offset * C + a * C + c;
      for (let p = 0; p < hw; p++) {
        const v = data[row + p]!;
        if (v < rootValue) continue;
        const id = idBase + p * A * C;
        if (size < k) {
          push(v, id);
          if (size === k) rootValue = hv[0]!;
          continue;
        }
        if (v === rootValue && id > hi[0]!) continue;
        hv[0] = v;
        hi[0] = id;
        siftDown(0);
        rootValue = hv[0]!;
      }
    }
  }
  const order = Array.from({ length: size }, (_, i) => i).sort((x, y) => hv[y]! - hv[x]! || hi[x]! - hi[y]!);
  return { values: Float32Array.from(order, (i) => hv[i]!), indices: Int32Array.from(order, (i) => hi[i]!) };
}

/**
 * Detections per image from raw EfficientDet head outputs, as effdet's DetBenchPredict (see the module comment).
 *
 * @param classOutputs per level (P3 first), float32 [N, anchors * numClasses, H, W]
 * @param boxOutputs per level, float32 [N, anchors * 4, H, W]
 */
export function postprocessDetections(classOutputs: readonly Tensor[], boxOutputs: readonly Tensor[], options: PostprocessOptions): Detections[] {
  const { batch, levels } = checkOutputs(classOutputs, boxOutputs, options);
  const { anchors, numClasses: C } = options;
  const A = anchors.anchorsPerLocation;
  const total = anchors.count * C;
  const k = Math.min(options.maxDetectionPoints ?? 5000, total);
  const maxDet = options.maxDetectionsPerImage ?? 100;
  const iouThreshold = options.iouThreshold ?? 0.5;
  if (!(Number.isInteger(k) && k >= 1)) throw new InvalidSpecError('maxDetectionPoints', options.maxDetectionPoints, 'a positive integer');
  if (!(Number.isInteger(maxDet) && maxDet >= 0)) throw new InvalidSpecError('maxDetectionsPerImage', maxDet, 'a non-negative integer');
  const results: Detections[] = [];
  for (let b = 0; b < batch; b++) {
    const { values, indices } = topLogits(levels, b, A, C, k);
    const n = indices.length;
    const boxes = new Float32Array(n * 4);
    const scores = new Float32Array(n);
    const classes = new Int32Array(n);
    const code = new Float32Array(4);
    for (let i = 0; i < n; i++) {
      const anchor = (indices[i]! / C) | 0;
      classes[i] = indices[i]! - anchor * C;
      let l = levels.length - 1;
      while (anchor < levels[l]!.offset) l--;
      const lv = levels[l]!;
      const hw = lv.h * lv.w;
      const rem = anchor - lv.offset;
      const p = (rem / A) | 0;
      const a = rem - p * A;
      const base = b * A * 4 * hw + a * 4 * hw + p;
      for (let j = 0; j < 4; j++) code[j] = lv.box[base + j * hw]!;
      decodeBoxInto(code, 0, anchors.boxes, anchor * 4, boxes, i * 4, true);
      scores[i] = 1 / (1 + Math.exp(-values[i]!));
    }
    const info = options.imageInfo?.[b];
    if (info) {
      const scale = f(info.imgScale);
      const w = f(f(info.imgSize[0]) / scale);
      const h = f(f(info.imgSize[1]) / scale);
      for (let i = 0; i < n * 4; i++) boxes[i] = Math.min(Math.max(boxes[i]!, 0), i % 2 === 0 ? w : h);
    }
    let keep: number[];
    let finalScores = scores;
    if (options.softNms) {
      const soft = batchedSoftNms(boxes, scores, classes, options.softNms === true ? {} : options.softNms);
      keep = soft.indices;
      finalScores = new Float32Array(scores);
      soft.indices.forEach((idx, j) => (finalScores[idx] = soft.scores[j]!));
    } else {
      keep = batchedNms(boxes, scores, classes, iouThreshold);
    }
    keep = keep.slice(0, maxDet);
    const out: Detections = { count: keep.length, boxes: new Float32Array(keep.length * 4), scores: new Float32Array(keep.length), classes: new Int32Array(keep.length) };
    const s = info ? f(info.imgScale) : 1;
    keep.forEach((idx, j) => {
      for (let q = 0; q < 4; q++) out.boxes[j * 4 + q] = info ? boxes[idx * 4 + q]! * s : boxes[idx * 4 + q]!;
      out.scores[j] = finalScores[idx]!;
      out.classes[j] = classes[idx]! + 1;
    });
    results.push(out);
  }
  return results;
}
