/**
 * A detector's input as effdet's evaluation builds it: `transforms_coco_eval` (ResizePad: the largest bicubic resize
 * that fits, pasted top-left on a canvas of the mean colour, `resolve_fill_color('mean')`), then `PrefetchLoader`'s
 * normalisation of the 8-bit pixels: (v - 255 * mean) / (255 * std), in float32 as PyTorch computes it (the constants
 * rounded to float32 first; this differs from torchvision's (v / 255 - mean) / std in the last bit).
 */
import { InvalidSpecError } from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';
import type { RgbImage } from '../images/decode.js';
import { fillColorForMean, type ResizeInfo, resizePad } from './augment-boxes.js';

const f = Math.fround;

/** PrefetchLoader's normalisation: 8-bit RGB (HWC) -> float32 CHW written into `out` from `offset`. */
export function writeEffdetNormalized(image: RgbImage, p: Pick<Preprocessing, 'mean' | 'std'>, out: Float32Array, offset = 0): void {
  const plane = image.width * image.height;
  if (image.data.length !== plane * 3) throw new InvalidSpecError('image data', { length: image.data.length, width: image.width, height: image.height }, `${plane * 3} bytes of RGB (HWC)`);
  if (!Number.isInteger(offset) || offset < 0 || offset + 3 * plane > out.length) throw new InvalidSpecError('offset', offset, `room for ${3 * plane} values in an output of ${out.length}`);
  for (let c = 0; c < 3; c++) {
    const mean = f(p.mean[c]! * 255);
    const std = f(p.std[c]! * 255);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = f(v - mean) / std;
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = lut[image.data[i * 3 + c]!]!;
  }
}

export interface Letterboxed {
  /** float32 CHW, 3 x height x width. */
  data: Float32Array;
  /** Where the image went: boxes map back with boxesToOriginal, post-processing takes imageInfoFor(info). */
  info: ResizeInfo;
}

/**
 * effdet's eval input for one decoded image at the model's input size [height, width]: letterboxed with the
 * preprocessing's interpolation (default bicubic) onto its mean colour, then normalised.
 */
export function letterbox(image: RgbImage, size: readonly [number, number], p: Preprocessing): Letterboxed {
  const { image: boxed, info } = resizePad({ image, boxes: [], classes: [] }, { size, interpolation: p.interpolation ?? 'bicubic', fill: fillColorForMean(p.mean) });
  const data = new Float32Array(3 * size[0] * size[1]);
  writeEffdetNormalized(boxed, p, data, 0);
  return { data, info };
}
