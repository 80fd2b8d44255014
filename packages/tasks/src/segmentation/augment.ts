/**
 * Joint augmentation of an image and its index mask: one geometric map (scale, crop, horizontal flip) applied to
 * both, bilinear for the image and nearest for the mask; pixels outside the source are the fill colour and 255
 * (ignore) in the mask.
 */
import { deriveSeed, seededRandom } from '@effnet/core';
import type { RgbImage } from '../images/decode.js';
import { IGNORE_INDEX, type IndexMask } from './index-png.js';

export interface WarpGeometry {
  /** Output pixels per source pixel, along x and y. */
  sx: number;
  sy: number;
  /** Top-left of the output window in the scaled source. */
  left: number;
  top: number;
  flip: boolean;
}

/** Resamples image and mask onto a `width` x `height` window of the scaled (and flipped) source. */
export function warpPair(image: RgbImage, mask: IndexMask, g: WarpGeometry, width: number, height: number, fill: readonly [number, number, number] = [124, 116, 104]): { image: RgbImage; mask: IndexMask } {
  const out = new Uint8Array(width * height * 3);
  const m = new Uint8Array(width * height);
  const W = image.width;
  const H = image.height;
  for (let y = 0; y < height; y++) {
    const fy = (y + g.top + 0.5) / g.sy - 0.5;
    const ny = Math.floor((y + g.top + 0.5) / g.sy);
    for (let x = 0; x < width; x++) {
      let fx = (x + g.left + 0.5) / g.sx - 0.5;
      let nx = Math.floor((x + g.left + 0.5) / g.sx);
      if (g.flip) {
        fx = W - 1 - fx;
        nx = W - 1 - nx;
      }
      const o = y * width + x;
      m[o] = nx >= 0 && nx < W && ny >= 0 && ny < H ? mask.data[ny * W + nx]! : IGNORE_INDEX;
      if (fx < -0.5 || fx > W - 0.5 || fy < -0.5 || fy > H - 0.5) {
        out.set(fill, o * 3);
        continue;
      }
      const cx = Math.min(Math.max(fx, 0), W - 1);
      const cy = Math.min(Math.max(fy, 0), H - 1);
      const x0 = Math.floor(cx);
      const y0 = Math.floor(cy);
      const x1 = Math.min(x0 + 1, W - 1);
      const y1 = Math.min(y0 + 1, H - 1);
      const ax = cx - x0;
      const ay = cy - y0;
      for (let c = 0; c < 3; c++) {
        const v00 = image.data[(y0 * W + x0) * 3 + c]!;
        const v01 = image.data[(y0 * W + x1) * 3 + c]!;
        const v10 = image.data[(y1 * W + x0) * 3 + c]!;
        const v11 = image.data[(y1 * W + x1) * 3 + c]!;
        out[o * 3 + c] = Math.round((v00 * (1 - ax) + v01 * ax) * (1 - ay) + (v10 * (1 - ax) + v11 * ax) * ay);
      }
    }
  }
  return { image: { data: out, width, height }, mask: { data: m, width, height } };
}

/** The whole image squashed to `size` x `size` (evaluation and the non-augmented training view). */
export function resizePair(image: RgbImage, mask: IndexMask, size: number): { image: RgbImage; mask: IndexMask } {
  return warpPair(image, mask, { sx: size / image.width, sy: size / image.height, left: 0, top: 0, flip: false }, size, size);
}

/**
 * Training view: the image squashed to `size`, scaled by a factor drawn from `scale`, a random `size` x `size` window
 * of it (centred where the scaled image is smaller), flipped with probability `hflip`; seeded.
 */
export function segmentationTrainTransform(image: RgbImage, mask: IndexMask, o: { size: number; seed: number; scale: [number, number]; hflip: number }): { image: RgbImage; mask: IndexMask } {
  const r = seededRandom(deriveSeed(o.seed, 0x5e6));
  const f = o.scale[0] + (o.scale[1] - o.scale[0]) * r();
  const sx = (o.size / image.width) * f;
  const sy = (o.size / image.height) * f;
  const spanX = image.width * sx - o.size;
  const spanY = image.height * sy - o.size;
  const left = spanX >= 0 ? Math.floor(r() * (spanX + 1)) : spanX / 2;
  const top = spanY >= 0 ? Math.floor(r() * (spanY + 1)) : spanY / 2;
  return warpPair(image, mask, { sx, sy, left, top, flip: r() < o.hflip }, o.size, o.size);
}
