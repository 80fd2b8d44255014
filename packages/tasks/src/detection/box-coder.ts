/**
 * Faster R-CNN box coding relative to anchors, in float32 arithmetic step by step as effdet's PyTorch code runs it
 * (so results match to the last bit or one, exp and log aside). Codes are [ty, tx, th, tw]; anchors and boxes yxyx.
 *
 * - decodeBoxes is effdet's `decode_box_outputs` (what DetBenchPredict uses): centre (a0 + a2) / 2, size exp(t) * anchor
 *   size, no scale factors unless given.
 * - encodeBoxes is effdet's `FasterRcnnBoxCoder().encode` (what AnchorLabeler uses): centre ymin + h / 2, sizes
 *   padded by eps = 1e-7 before the division and the log. effdet uses no scale factors (automl neither).
 */
import { InvalidSpecError } from '@effnet/core';

const f = Math.fround;

export interface BoxCoderOptions {
  /** Multipliers of ty, tx, th, tw (Faster R-CNN's [10, 10, 5, 5]); default none, as effdet. */
  scaleFactors?: readonly [number, number, number, number];
}

export interface EncodeOptions extends BoxCoderOptions {
  /** Added to heights and widths before dividing (effdet's EPS, default 1e-7). */
  eps?: number;
}

export interface DecodeOptions extends BoxCoderOptions {
  /** Output [xmin, ymin, xmax, ymax] instead of yxyx (effdet's output_xyxy). */
  xyxy?: boolean;
}

function checkScale(s: readonly number[] | undefined): void {
  if (s && !(s.length === 4 && s.every((x) => Number.isFinite(x) && x > 0))) throw new InvalidSpecError('scaleFactors', s, 'four positive numbers [ty, tx, th, tw]');
}

/**
 * Decodes one code against one anchor into `out` at `o` (yxyx, or xyxy with `xyxy`). `codes`/`anchors` are read at
 * `c`/`a` (4 values each).
 */
export function decodeBoxInto(codes: ArrayLike<number>, c: number, anchors: ArrayLike<number>, a: number, out: Float32Array, o: number, xyxy: boolean, scale?: readonly number[]): void {
  const a0 = anchors[a]!;
  const a1 = anchors[a + 1]!;
  const a2 = anchors[a + 2]!;
  const a3 = anchors[a + 3]!;
  const yca = f(f(a0 + a2) / 2);
  const xca = f(f(a1 + a3) / 2);
  const ha = f(a2 - a0);
  const wa = f(a3 - a1);
  let ty = f(codes[c]!);
  let tx = f(codes[c + 1]!);
  let th = f(codes[c + 2]!);
  let tw = f(codes[c + 3]!);
  if (scale) {
    ty = f(ty / scale[0]!);
    tx = f(tx / scale[1]!);
    th = f(th / scale[2]!);
    tw = f(tw / scale[3]!);
  }
  const w = f(f(Math.exp(tw)) * wa);
  const h = f(f(Math.exp(th)) * ha);
  const yc = f(f(ty * ha) + yca);
  const xc = f(f(tx * wa) + xca);
  const hh = f(h / 2);
  const hw = f(w / 2);
  if (xyxy) {
    out[o] = xc - hw;
    out[o + 1] = yc - hh;
    out[o + 2] = xc + hw;
    out[o + 3] = yc + hh;
  } else {
    out[o] = yc - hh;
    out[o + 1] = xc - hw;
    out[o + 2] = yc + hh;
    out[o + 3] = xc + hw;
  }
}

/** Decodes [N, 4] codes against [N, 4] yxyx anchors (effdet's decode_box_outputs). */
export function decodeBoxes(codes: ArrayLike<number>, anchors: ArrayLike<number>, options: DecodeOptions = {}): Float32Array {
  checkScale(options.scaleFactors);
  if (codes.length !== anchors.length || codes.length % 4 !== 0) {
    throw new InvalidSpecError('box codes', { codes: codes.length, anchors: anchors.length }, 'codes and anchors of the same length, 4 numbers per box');
  }
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i += 4) decodeBoxInto(codes, i, anchors, i, out, i, options.xyxy ?? false, options.scaleFactors);
  return out;
}

/** Encodes [N, 4] yxyx boxes against [N, 4] yxyx anchors (effdet's FasterRcnnBoxCoder.encode). */
export function encodeBoxes(boxes: ArrayLike<number>, anchors: ArrayLike<number>, options: EncodeOptions = {}): Float32Array {
  checkScale(options.scaleFactors);
  if (boxes.length !== anchors.length || boxes.length % 4 !== 0) {
    throw new InvalidSpecError('boxes to encode', { boxes: boxes.length, anchors: anchors.length }, 'boxes and anchors of the same length, 4 numbers per box');
  }
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) encodeBoxInto(boxes, i, anchors, i, out, i, options);
  return out;
}

/** Encodes one yxyx box against one yxyx anchor into `out` at `o`. */
export function encodeBoxInto(boxes: ArrayLike<number>, b: number, anchors: ArrayLike<number>, a: number, out: Float32Array, o: number, options: EncodeOptions = {}): void {
  const eps = f(options.eps ?? 1e-7);
  const [ycA, xcA, hA, wA] = centerSize(anchors, a);
  const [yc, xc, h, w] = centerSize(boxes, b);
  const ha = f(hA + eps);
  const wa = f(wA + eps);
  const hb = f(h + eps);
  const wb = f(w + eps);
  let tx = f(f(xc - xcA) / wa);
  let ty = f(f(yc - ycA) / ha);
  let tw = f(Math.log(f(wb / wa)));
  let th = f(Math.log(f(hb / ha)));
  const s = options.scaleFactors;
  if (s) {
    ty = f(ty * s[0]);
    tx = f(tx * s[1]);
    th = f(th * s[2]);
    tw = f(tw * s[3]);
  }
  out[o] = ty;
  out[o + 1] = tx;
  out[o + 2] = th;
  out[o + 3] = tw;
}

/** BoxList.get_center_coordinates_and_sizes in float32: [ycenter, xcenter, height, width]. */
function centerSize(b: ArrayLike<number>, i: number): [number, number, number, number] {
  const ymin = f(b[i]!);
  const xmin = f(b[i + 1]!);
  const height = f(f(b[i + 2]!) - ymin);
  const width = f(f(b[i + 3]!) - xmin);
  return [f(ymin + f(height / 2)), f(xmin + f(width / 2)), height, width];
}
