import { InvalidSpecError } from '@effnet/core';
import type { Interpolation } from '@effnet/zoo';

/**
 * 8-bit image resampling that reproduces Pillow's `Image.resize(size, filter)` (libImaging's Resample.c and, for
 * NEAREST, its affine scaling in Geometry.c), which is what torchvision's `Resize` runs on PIL images:
 *
 * - bicubic (a = -0.5, support 2) and bilinear (triangle, support 1) are separable convolutions, horizontal pass
 *   first, with the filter stretched by the downscale factor (antialiasing), weights normalised to sum 1, then
 *   converted to 22-bit fixed point; each pass accumulates in integers from 0.5 (rounding) and clips to 0..255, so the
 *   intermediate image is 8-bit exactly as in Pillow;
 * - nearest takes source pixel floor(x0 + i * scale) with x0 = scale / 2, the position accumulated by repeated
 *   addition in double precision as Pillow does.
 *
 * Every output pixel depends only on its own coefficients, so computing a window of the output (`region`) gives the
 * same values as resizing the whole image and cropping it afterwards.
 */

/** Pixels with any number of interleaved 8-bit channels (HWC). */
export interface Image8 {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A window of the resized image, in its pixel coordinates; it may reach outside (those pixels are 0). */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Pillow's fixed-point precision for 8-bit resampling: 32 bits less 8 for the value and 2 for overshoot. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface Filter {
  support: number;
  weight(x: number): number;
}

const FILTERS: Record<Exclude<Interpolation, 'nearest'>, Filter> = {
  bilinear: {
    support: 1,
    weight(x) {
      const t = Math.abs(x);
      return t < 1 ? 1 - t : 0;
    },
  },
  bicubic: {
    support: 2,
    weight(x) {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
};

/** One axis of a convolution resize: for each output index its first input index, tap count and fixed-point taps. */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  /** `stride` taps per output index. */
  weights: Int32Array;
  stride: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for output indices [from, from + n). */
function computeTaps(inSize: number, outSize: number, filter: Filter, from: number, n: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * stride);
  const w = new Float64Array(stride);
  const invScale = 1 / filterScale;
  for (let i = 0; i < n; i++) {
    const center = (from + i + 0.5) * scale;
    // C's (int) truncates toward zero; the clamps make the sign irrelevant.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const taps = hi - lo;
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      w[k] = filter.weight((k + lo - center + 0.5) * invScale);
      sum += w[k]!;
    }
    for (let k = 0; k < taps; k++) {
      const v = sum !== 0 ? w[k]! / sum : w[k]!;
      weights[i * stride + k] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    first[i] = lo;
    count[i] = taps;
  }
  return { first, count, weights, stride };
}

/** Fixed-point accumulator -> 0..255 (Pillow's clip8: arithmetic shift, then clamp). */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Output indices [start, start + n) clipped to [0, size): the part of a region that lies inside the image. */
function inside(start: number, n: number, size: number): [number, number] {
  const lo = Math.min(Math.max(start, 0), size);
  const hi = Math.max(Math.min(start + n, size), lo);
  return [lo, hi];
}

function checkImage(image: Image8, channels: number): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidSpecError('image size', { width, height }, 'positive integer width and height');
  }
  if (!Number.isInteger(channels) || channels < 1 || data.length !== width * height * channels) {
    throw new InvalidSpecError('image data', { length: data.length, width, height, channels }, `${width}x${height} pixels of ${channels} channels need ${width * height * channels} bytes (HWC)`);
  }
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidSpecError('resize target', { width, height }, 'positive integer width and height');
  }
}

/**
 * Resizes like Pillow's `Image.resize((width, height), filter)` and returns the `region` of the result (default: all
 * of it). Pixels of the region outside the resized image are 0, as torchvision's CenterCrop pads.
 *
 * @param channels interleaved channels per pixel (default 3, RGB)
 */
export function resizeImage(image: Image8, width: number, height: number, interpolation: Interpolation, region?: Region, channels = 3): Image8 {
  checkImage(image, channels);
  checkSize(width, height);
  const r = region ?? { left: 0, top: 0, width, height };
  checkSize(r.width, r.height);
  if (!Number.isInteger(r.left) || !Number.isInteger(r.top)) throw new InvalidSpecError('region', r, 'integer left and top');
  const out = new Uint8Array(r.width * r.height * channels);
  const [x0, x1] = inside(r.left, r.width, width);
  const [y0, y1] = inside(r.top, r.height, height);
  if (x0 === x1 || y0 === y1) return { data: out, width: r.width, height: r.height };

  // Pillow returns a copy when the size does not change.
  if (width === image.width && height === image.height) {
    copyRows(image.data, image.width, x0, y0, x1, y1, out, r, channels);
    return { data: out, width: r.width, height: r.height };
  }
  switch (interpolation) {
    case 'nearest':
      nearest(image, width, height, x0, y0, x1, y1, out, r, channels);
      break;
    case 'bilinear':
    case 'bicubic':
      convolve(image, width, height, FILTERS[interpolation], x0, y0, x1, y1, out, r, channels);
      break;
    default: {
      const never: never = interpolation;
      throw new InvalidSpecError('interpolation', never, "'bicubic', 'bilinear' or 'nearest'");
    }
  }
  return { data: out, width: r.width, height: r.height };
}

/** Copies source rows/columns [y0, y1) x [x0, x1) into the region buffer. */
function copyRows(src: Uint8Array, srcWidth: number, x0: number, y0: number, x1: number, y1: number, out: Uint8Array, r: Region, channels: number): void {
  for (let y = y0; y < y1; y++) {
    const from = (y * srcWidth + x0) * channels;
    out.set(src.subarray(from, from + (x1 - x0) * channels), ((y - r.top) * r.width + (x0 - r.left)) * channels);
  }
}

/** Pillow's NEAREST resize: an affine scaling whose source positions are accumulated in double precision. */
function nearest(image: Image8, width: number, height: number, x0: number, y0: number, x1: number, y1: number, out: Uint8Array, r: Region, channels: number): void {
  const sourceIndex = (inSize: number, outSize: number, end: number): Int32Array => {
    const step = inSize / outSize;
    const table = new Int32Array(end);
    let pos = step * 0.5;
    for (let i = 0; i < end; i++) {
      table[i] = pos < 0 ? -1 : Math.trunc(pos);
      pos += step;
    }
    return table;
  };
  const xs = sourceIndex(image.width, width, x1);
  const ys = sourceIndex(image.height, height, y1);
  const src = image.data;
  for (let y = y0; y < y1; y++) {
    const sy = ys[y]!;
    if (sy < 0 || sy >= image.height) continue;
    let o = ((y - r.top) * r.width + (x0 - r.left)) * channels;
    for (let x = x0; x < x1; x++, o += channels) {
      const sx = xs[x]!;
      if (sx < 0 || sx >= image.width) continue;
      const s = (sy * image.width + sx) * channels;
      for (let c = 0; c < channels; c++) out[o + c] = src[s + c]!;
    }
  }
}

/** Pillow's two-pass 8-bit convolution resize (ImagingResampleInner), computed for the window only. */
function convolve(image: Image8, width: number, height: number, filter: Filter, x0: number, y0: number, x1: number, y1: number, out: Uint8Array, r: Region, channels: number): void {
  const needHorizontal = width !== image.width;
  const needVertical = height !== image.height;
  const src = image.data;
  const sw = image.width;

  // Rows of the source the vertical pass reads (all of them when there is no vertical pass).
  const vt = needVertical ? computeTaps(image.height, height, filter, y0, y1 - y0) : undefined;
  const rowLo = vt ? vt.first[0]! : y0;
  const rowHi = vt ? vt.first[y1 - y0 - 1]! + vt.count[y1 - y0 - 1]! : y1;

  // Horizontal pass: source rows [rowLo, rowHi) -> 8-bit rows of the window's columns [x0, x1).
  const tw = x1 - x0;
  let mid: Uint8Array;
  if (needHorizontal) {
    const ht = computeTaps(sw, width, filter, x0, tw);
    mid = new Uint8Array((rowHi - rowLo) * tw * channels);
    const acc = new Float64Array(channels);
    for (let y = rowLo; y < rowHi; y++) {
      const rowBase = y * sw;
      let o = (y - rowLo) * tw * channels;
      for (let i = 0; i < tw; i++) {
        const lo = ht.first[i]!;
        const n = ht.count[i]!;
        const kb = i * ht.stride;
        if (channels === 3) {
          let a0 = HALF;
          let a1 = HALF;
          let a2 = HALF;
          let s = (rowBase + lo) * 3;
          for (let k = 0; k < n; k++, s += 3) {
            const wk = ht.weights[kb + k]!;
            a0 += src[s]! * wk;
            a1 += src[s + 1]! * wk;
            a2 += src[s + 2]! * wk;
          }
          mid[o++] = clip8(a0);
          mid[o++] = clip8(a1);
          mid[o++] = clip8(a2);
        } else {
          acc.fill(HALF);
          for (let k = 0; k < n; k++) {
            const wk = ht.weights[kb + k]!;
            const s = (rowBase + lo + k) * channels;
            for (let c = 0; c < channels; c++) acc[c]! += src[s + c]! * wk;
          }
          for (let c = 0; c < channels; c++) mid[o++] = clip8(acc[c]!);
        }
      }
    }
  } else {
    // No horizontal pass: the vertical pass reads the source columns [x0, x1) directly.
    mid = new Uint8Array((rowHi - rowLo) * tw * channels);
    for (let y = rowLo; y < rowHi; y++) {
      const from = (y * sw + x0) * channels;
      mid.set(src.subarray(from, from + tw * channels), (y - rowLo) * tw * channels);
    }
  }

  // Vertical pass: window rows [y0, y1) from the intermediate rows.
  const rowBytes = tw * channels;
  for (let y = y0; y < y1; y++) {
    const dst = ((y - r.top) * r.width + (x0 - r.left)) * channels;
    if (!vt) {
      out.set(mid.subarray((y - rowLo) * rowBytes, (y - rowLo + 1) * rowBytes), dst);
      continue;
    }
    const j = y - y0;
    const lo = vt.first[j]! - rowLo;
    const n = vt.count[j]!;
    const kb = j * vt.stride;
    for (let b = 0; b < rowBytes; b++) {
      let a = HALF;
      let s = lo * rowBytes + b;
      for (let k = 0; k < n; k++, s += rowBytes) a += mid[s]! * vt.weights[kb + k]!;
      out[dst + b] = clip8(a);
    }
  }
}
