/**
 * COCO bounding-box evaluation, the same numbers as pycocotools' `COCOeval(gt, dt, 'bbox')` followed by
 * `evaluate()`, `accumulate()` and `summarize()` (cocodataset/cocoapi master):
 *
 * - images are the ground truth's (sorted ids), categories the ground truth's (sorted ids);
 * - per image and category, detections are ordered by score with a stable sort (numpy's mergesort on -score, so
 *   equal scores keep their order in the results list) and cut to the largest maxDets (100) before IoUs are taken;
 * - box IoU as cocoapi's C `bbIou`; against a crowd box the union is the detection's area (w * h), and a crowd box
 *   can absorb any number of detections;
 * - ground truth is ignored when it is a crowd or when its `area` (the annotation's, not the box's) is outside the
 *   area range (bounds inclusive); the annotation's own `ignore` field is read and then overwritten by `iscrowd` in
 *   cocoapi, so it has no effect, here too;
 * - greedy matching per IoU threshold, precision made monotone from the right, sampled at 101 recall points with
 *   `searchsorted(rc, recThrs, 'left')`, 0 past the last recall reached; -1 where a category has no (non-ignored)
 *   ground truth; the 12 statistics are means over the entries > -1, summed pairwise as numpy does.
 *
 * Like cocoapi, a detection matched to a ground-truth annotation whose id is 0 counts as unmatched (cocoapi stores the
 * matched id and tests it for non-zero). Unlike cocoapi, malformed input (unknown images or categories, duplicate ids,
 * missing `area`) is an error naming the entry instead of being skipped or crashing, a missing `iscrowd` means 0
 * (cocoapi needs the field), and an empty results list is evaluated (all zeros) where cocoapi's loadRes fails.
 */
import { checkCocoDetections, checkCocoGroundTruth, type CheckDetectionsOptions, type CocoDetection, type CocoGroundTruth } from './coco-format.js';

/** numpy's `linspace(start, stop, num)`: `i * step + start`, the last value exactly `stop`. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** IoU thresholds 0.50:0.05:0.95, bit for bit as cocoapi's `np.linspace(.5, 0.95, 10)`. */
export const COCO_IOU_THRESHOLDS: readonly number[] = linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
/** Recall points 0:0.01:1 as cocoapi's `np.linspace(.0, 1.00, 101)`. */
export const COCO_RECALL_THRESHOLDS: readonly number[] = linspace(0, 1, Math.round((1 - 0) / 0.01) + 1);
export const COCO_MAX_DETS: readonly number[] = [1, 10, 100];
export const COCO_AREA_RANGES: readonly (readonly [number, number])[] = [
  [0 ** 2, 1e5 ** 2],
  [0 ** 2, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e5 ** 2],
];
export const COCO_AREA_LABELS = ['all', 'small', 'medium', 'large'] as const;
export type CocoAreaLabel = (typeof COCO_AREA_LABELS)[number];

/** The 12 statistics of `COCOeval.stats`, in order. */
export const COCO_STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;
export type CocoStatName = (typeof COCO_STAT_NAMES)[number];
export type CocoStats = Record<CocoStatName, number>;

/** What each statistic averages: AP or AR, IoU threshold (all when undefined), area range, maxDets. */
const STAT_DEFS: readonly { ap: boolean; iou?: number; area: CocoAreaLabel; maxDets: number }[] = [
  { ap: true, area: 'all', maxDets: 100 },
  { ap: true, iou: 0.5, area: 'all', maxDets: 100 },
  { ap: true, iou: 0.75, area: 'all', maxDets: 100 },
  { ap: true, area: 'small', maxDets: 100 },
  { ap: true, area: 'medium', maxDets: 100 },
  { ap: true, area: 'large', maxDets: 100 },
  { ap: false, area: 'all', maxDets: 1 },
  { ap: false, area: 'all', maxDets: 10 },
  { ap: false, area: 'all', maxDets: 100 },
  { ap: false, area: 'small', maxDets: 100 },
  { ap: false, area: 'medium', maxDets: 100 },
  { ap: false, area: 'large', maxDets: 100 },
];

export interface CocoClassAP {
  categoryId: number;
  name: string;
  /** Mean precision over IoU 0.50:0.95 and the 101 recall points (area all, maxDets 100); -1 without ground truth. */
  AP: number;
  /** The same at IoU 0.5 only. */
  AP50: number;
}

/**
 * cocoapi's accumulated arrays (`COCOeval.eval`), row-major: precision and scores [T, R, K, A, M], recall [T, K, A,
 * M] with T IoU thresholds, R recall points, K categories (sorted ids), A area ranges, M maxDets.
 */
export interface CocoAccumulated {
  counts: [T: number, R: number, K: number, A: number, M: number];
  categoryIds: number[];
  precision: Float64Array;
  recall: Float64Array;
  scores: Float64Array;
}

export interface CocoPrecisionRecall {
  recallThresholds: readonly number[];
  iouThresholds: readonly number[];
  /**
   * Per IoU threshold, the precision at each of the 101 recall points averaged over the categories that have ground
   * truth (area all, maxDets 100); -1 where no category has any.
   */
  precision: number[][];
}

export interface CocoEvalResult {
  stats: CocoStats;
  /** The 12 statistics in `COCOeval.stats` order. */
  statsArray: number[];
  perClass: CocoClassAP[];
  pr: CocoPrecisionRecall;
  accumulated: CocoAccumulated;
  numImages: number;
  numDetections: number;
}

export interface EvaluateCocoOptions extends CheckDetectionsOptions {
  /** Names errors use for the ground truth and the detections (e.g. their file names). */
  gtSource?: string;
  dtSource?: string;
}

/** numpy's pairwise summation of a float64 array (`np.add.reduce` on a contiguous 1-D array). */
export function pairwiseSum(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    const r = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) r[j] = a[start + j]!;
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[start + i + j]!;
    let res = (r[0]! + r[1]! + (r[2]! + r[3]!)) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** `np.mean(s[s > -1])`, or -1 when nothing is > -1. */
function meanValid(values: number[]): number {
  const valid = values.filter((v) => v > -1);
  return valid.length === 0 ? -1 : pairwiseSum(valid) / valid.length;
}

/** Stable order of indices by descending value (numpy's `argsort(-x, kind='mergesort')`). */
function argsortDescending(values: ArrayLike<number>): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  return idx.sort((a, b) => values[b]! - values[a]! || a - b);
}

/** cocoapi's `bbIou` for one detection and one ground-truth box, both `[x, y, w, h]`. */
export function cocoBoxIou(d: readonly number[], g: readonly number[], crowd: boolean): number {
  const w = Math.min(d[2]! + d[0]!, g[2]! + g[0]!) - Math.max(d[0]!, g[0]!);
  if (w <= 0) return 0;
  const h = Math.min(d[3]! + d[1]!, g[3]! + g[1]!) - Math.max(d[1]!, g[1]!);
  if (h <= 0) return 0;
  const i = w * h;
  const da = d[2]! * d[3]!;
  const u = crowd ? da : da + g[2]! * g[3]! - i;
  return i / u;
}

interface Gt {
  id: number;
  bbox: number[];
  area: number;
  crowd: boolean;
}

interface Dt {
  bbox: number[];
  area: number;
  score: number;
}

/** evaluateImg's result, reduced to what accumulate reads. */
interface EvalImg {
  /** Scores of the kept detections, best first. */
  scores: Float64Array;
  /** [T, D]: matched to a ground-truth id other than 0. */
  matched: Uint8Array;
  /** [T, D]: ignored. */
  ignored: Uint8Array;
  /** Number of ground truth not ignored. */
  numGt: number;
}

const T = COCO_IOU_THRESHOLDS.length;
const R = COCO_RECALL_THRESHOLDS.length;
const A = COCO_AREA_RANGES.length;
const M = COCO_MAX_DETS.length;
const MAX_DET = COCO_MAX_DETS[M - 1]!;

/** evaluateImg for one image, category and area range: greedy matching at every IoU threshold. */
function evaluateImg(gts: Gt[], dts: Dt[], ious: Float64Array | null, range: readonly [number, number]): EvalImg | null {
  const G = gts.length;
  const D = dts.length;
  if (G === 0 && D === 0) return null;
  const gtIgnoreRaw = gts.map((g) => g.crowd || g.area < range[0] || g.area > range[1]);
  // Ground truth sorted with ignored last (stable); ious columns follow.
  const order = [...gtIgnoreRaw.keys()].sort((a, b) => Number(gtIgnoreRaw[a]) - Number(gtIgnoreRaw[b]) || a - b);
  const gtIg = order.map((i) => gtIgnoreRaw[i]!);
  const crowd = order.map((i) => gts[i]!.crowd);
  const gtIds = order.map((i) => gts[i]!.id);
  const gtMatched = new Uint8Array(T * G);
  const dtm = new Float64Array(T * D);
  const dtIg = new Uint8Array(T * D);
  if (ious) {
    for (let t = 0; t < T; t++) {
      const thr = COCO_IOU_THRESHOLDS[t]!;
      for (let d = 0; d < D; d++) {
        let iou = Math.min(thr, 1 - 1e-10);
        let m = -1;
        for (let gi = 0; gi < G; gi++) {
          if (gtMatched[t * G + gi] && !crowd[gi]) continue;
          if (m > -1 && !gtIg[m] && gtIg[gi]) break;
          const v = ious[d * G + order[gi]!]!;
          if (v < iou) continue;
          iou = v;
          m = gi;
        }
        if (m === -1) continue;
        dtIg[t * D + d] = gtIg[m] ? 1 : 0;
        dtm[t * D + d] = gtIds[m]!;
        gtMatched[t * G + m] = 1;
      }
    }
  }
  const matched = new Uint8Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) {
      const k = t * D + d;
      matched[k] = dtm[k] !== 0 ? 1 : 0;
      // Unmatched detections outside the area range are ignored.
      const a = dts[d]!.area;
      if (!matched[k] && (a < range[0] || a > range[1])) dtIg[k] = 1;
    }
  }
  return { scores: Float64Array.from(dts, (d) => d.score), matched, ignored: dtIg, numGt: gtIg.filter((x) => !x).length };
}

/** accumulate for one category, area range and maxDets: precision at the recall points and the final recall per IoU. */
function accumulateOne(E: EvalImg[], maxDet: number, precision: Float64Array, recall: Float64Array, scoresOut: Float64Array, at: (t: number, r: number) => number, atRecall: (t: number) => number): void {
  let npig = 0;
  for (const e of E) npig += e.numGt;
  if (npig === 0) return;
  // Concatenate the first maxDet detections of every image, then order by score (stable).
  const scores: number[] = [];
  const src: [EvalImg, number][] = [];
  for (const e of E) {
    const n = Math.min(maxDet, e.scores.length);
    for (let d = 0; d < n; d++) {
      scores.push(e.scores[d]!);
      src.push([e, d]);
    }
  }
  const inds = argsortDescending(scores);
  const nd = inds.length;
  const tp = new Float64Array(nd);
  const fp = new Float64Array(nd);
  const pr = new Float64Array(nd);
  for (let t = 0; t < T; t++) {
    let tpSum = 0;
    let fpSum = 0;
    for (let j = 0; j < nd; j++) {
      const [e, d] = src[inds[j]!]!;
      const D = e.scores.length;
      const k = t * D + d;
      if (!e.ignored[k]) {
        if (e.matched[k]) tpSum++;
        else fpSum++;
      }
      tp[j] = tpSum;
      fp[j] = fpSum;
    }
    for (let j = 0; j < nd; j++) pr[j] = tp[j]! / (fp[j]! + tp[j]! + Number.EPSILON);
    recall[atRecall(t)] = nd ? tp[nd - 1]! / npig : 0;
    for (let i = nd - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
    // searchsorted(rc, recThrs, side='left'); rc is non-decreasing.
    let pi = 0;
    for (let r = 0; r < R; r++) {
      const thr = COCO_RECALL_THRESHOLDS[r]!;
      while (pi < nd && tp[pi]! / npig < thr) pi++;
      if (pi >= nd) {
        // cocoapi stops at the first index past the end; the remaining recall points keep 0.
        for (let rr = r; rr < R; rr++) {
          precision[at(t, rr)] = 0;
          scoresOut[at(t, rr)] = 0;
        }
        break;
      }
      precision[at(t, r)] = pr[pi]!;
      scoresOut[at(t, r)] = scores[inds[pi]!]!;
    }
  }
}

/**
 * Evaluates COCO detections against COCO ground truth as pycocotools' `COCOeval(..., 'bbox')` does: the 12 summary
 * statistics, per-category AP and AP50, the data of a precision-recall plot and the raw accumulated arrays.
 *
 * @param gt a COCO annotations object (parsed JSON); checked, errors name the entry at fault
 * @param detections a COCO results list (parsed JSON); every image_id must be an image of `gt`
 */
export function evaluateCoco(gt: unknown, detections: unknown, options: EvaluateCocoOptions = {}): CocoEvalResult {
  const truth: CocoGroundTruth = checkCocoGroundTruth(gt, options.gtSource ?? 'ground truth');
  const dets: CocoDetection[] = checkCocoDetections(detections, truth, options.dtSource ?? 'detections', options);

  const imgIds = [...new Set(truth.images.map((im) => im.id))].sort((a, b) => a - b);
  const catIds = [...new Set(truth.categories.map((c) => c.id))].sort((a, b) => a - b);
  const I = imgIds.length;
  const K = catIds.length;
  const imgIndex = new Map(imgIds.map((id, i) => [id, i]));
  const catIndex = new Map(catIds.map((id, k) => [id, k]));

  // Ground truth and detections per (category, image), in file order.
  const gts: Gt[][] = Array.from({ length: K * I }, () => []);
  const dts: Dt[][] = Array.from({ length: K * I }, () => []);
  for (const a of truth.annotations) {
    gts[catIndex.get(a.category_id)! * I + imgIndex.get(a.image_id)!]!.push({ id: a.id, bbox: a.bbox, area: a.area!, crowd: Boolean(a.iscrowd) });
  }
  for (const d of dets) {
    const k = catIndex.get(d.category_id);
    if (k === undefined) continue; // only with unknownCategories: 'ignore', as cocoapi
    dts[k * I + imgIndex.get(d.image_id)!]!.push({ bbox: d.bbox, area: d.bbox[2]! * d.bbox[3]!, score: d.score });
  }

  // evaluate(): per (category, area, image), detections best first and cut to maxDets[-1].
  const evalImgs: (EvalImg | null)[] = new Array(K * A * I).fill(null);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < I; i++) {
      const g = gts[k * I + i]!;
      const all = dts[k * I + i]!;
      if (g.length === 0 && all.length === 0) continue;
      const d = argsortDescending(all.map((x) => x.score)).slice(0, MAX_DET).map((j) => all[j]!);
      let ious: Float64Array | null = null;
      if (g.length > 0 && d.length > 0) {
        ious = new Float64Array(d.length * g.length);
        for (let di = 0; di < d.length; di++) for (let gi = 0; gi < g.length; gi++) ious[di * g.length + gi] = cocoBoxIou(d[di]!.bbox, g[gi]!.bbox, g[gi]!.crowd);
      }
      for (let a = 0; a < A; a++) evalImgs[(k * A + a) * I + i] = evaluateImg(g, d, ious, COCO_AREA_RANGES[a]!);
    }
  }

  // accumulate()
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const scores = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E = evalImgs.slice((k * A + a) * I, (k * A + a + 1) * I).filter((e): e is EvalImg => e !== null);
      if (E.length === 0) continue;
      for (let m = 0; m < M; m++) {
        accumulateOne(
          E,
          COCO_MAX_DETS[m]!,
          precision,
          recall,
          scores,
          (t, r) => (((t * R + r) * K + k) * A + a) * M + m,
          (t) => ((t * K + k) * A + a) * M + m,
        );
      }
    }
  }

  // summarize()
  const statsArray = STAT_DEFS.map((s) => {
    const a = COCO_AREA_LABELS.indexOf(s.area);
    const m = COCO_MAX_DETS.indexOf(s.maxDets);
    const ts = s.iou === undefined ? [...COCO_IOU_THRESHOLDS.keys()] : COCO_IOU_THRESHOLDS.flatMap((v, t) => (v === s.iou ? [t] : []));
    const values: number[] = [];
    for (const t of ts) {
      if (s.ap) {
        for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) values.push(precision[(((t * R + r) * K + k) * A + a) * M + m]!);
      } else {
        for (let k = 0; k < K; k++) values.push(recall[((t * K + k) * A + a) * M + m]!);
      }
    }
    return meanValid(values);
  });
  const stats = Object.fromEntries(COCO_STAT_NAMES.map((n, i) => [n, statsArray[i]!])) as CocoStats;

  // Per category: precision[:, :, k, 0, 2] (AP) and precision[0, :, k, 0, 2] (AP50).
  const names = new Map(truth.categories.map((c) => [c.id, c.name ?? String(c.id)]));
  const pAt = (t: number, r: number, k: number) => precision[(((t * R + r) * K + k) * A + 0) * M + (M - 1)]!;
  const perClass = catIds.map((id, k) => {
    const all: number[] = [];
    for (let t = 0; t < T; t++) for (let r = 0; r < R; r++) all.push(pAt(t, r, k));
    const at50: number[] = [];
    for (let r = 0; r < R; r++) at50.push(pAt(0, r, k));
    return { categoryId: id, name: names.get(id)!, AP: meanValid(all), AP50: meanValid(at50) };
  });
  const pr: CocoPrecisionRecall = {
    recallThresholds: COCO_RECALL_THRESHOLDS,
    iouThresholds: COCO_IOU_THRESHOLDS,
    precision: COCO_IOU_THRESHOLDS.map((_, t) => COCO_RECALL_THRESHOLDS.map((__, r) => meanValid(catIds.map((___, k) => pAt(t, r, k))))),
  };
  return {
    stats,
    statsArray,
    perClass,
    pr,
    accumulated: { counts: [T, R, K, A, M], categoryIds: catIds, precision, recall, scores },
    numImages: I,
    numDetections: dets.length,
  };
}

/** Python's `'{:0.3f}'.format(x)`: correctly rounded, exact ties (odd multiples of 1/16) to even. */
function formatFixed3(x: number): string {
  const s = x.toFixed(3);
  const sixteenths = x * 16;
  if (!Number.isInteger(sixteenths) || sixteenths % 2 === 0) return s;
  // x = j/16 with j odd sits exactly halfway between two thousandths; toFixed rounds it away from zero.
  const down = (Math.trunc(x * 1000) / 1000).toFixed(3);
  const lastDigit = Number(s.at(-1));
  return lastDigit % 2 === 0 ? s : down;
}

/** pycocotools' 12-line summary (`COCOeval.summarize()`), one string per line. */
export function formatCocoSummary(stats: CocoStats): string[] {
  return STAT_DEFS.map((s, i) => {
    const title = s.ap ? 'Average Precision' : 'Average Recall';
    const type = s.ap ? '(AP)' : '(AR)';
    const iou = s.iou === undefined ? '0.50:0.95' : s.iou.toFixed(2);
    return ` ${title.padEnd(18)} ${type} @[ IoU=${iou.padEnd(9)} | area=${s.area.padStart(6)} | maxDets=${String(s.maxDets).padStart(3)} ] = ${formatFixed3(stats[COCO_STAT_NAMES[i]!])}`;
  });
}
