/**
 * EfficientDet / RetinaNet anchors as effdet's `Anchors` generates them (automl's anchors.py): for each level from
 * minLevel to maxLevel, a grid of centres at stride/2 + i * stride (numpy `arange` arithmetic), and at every centre
 * numScales octave scales x the aspect ratios (scale-major), sized anchorScale * stride * 2^(octave/numScales) times
 * the aspect pair. Boxes are [ymin, xmin, ymax, xmax] (yxyx) in input-image pixels, computed in float64 and stored as
 * float32 as effdet does; anchors are ordered level, then row, column, then scale and aspect.
 */
import { type Graph, InvalidSpecError, readDetectionMetadata } from '@effnet/core';

/** An aspect ratio as automl writes it: an (x, y) multiplier pair, or a number r meaning (sqrt r, 1 / sqrt r). */
export type AspectRatio = readonly [number, number] | number;

export interface AnchorOptions {
  minLevel: number;
  maxLevel: number;
  /** Octave scales per level (3: 2^0, 2^(1/3), 2^(2/3)). */
  numScales: number;
  aspectRatios: readonly AspectRatio[];
  /** Base anchor size in strides, one number or one per level. */
  anchorScale: number | readonly number[];
  /** Model input size, a side or [height, width]. */
  imageSize: number | readonly [number, number];
}

/** effdet's defaults (model_config.py): levels 3-7, 3 scales, ratios (1, 1), (1.4, 0.7), (0.7, 1.4), anchor scale 4. */
export const EFFDET_ANCHOR_DEFAULTS = {
  minLevel: 3,
  maxLevel: 7,
  numScales: 3,
  aspectRatios: [
    [1.0, 1.0],
    [1.4, 0.7],
    [0.7, 1.4],
  ] as readonly AspectRatio[],
  anchorScale: 4.0,
} as const;

export interface AnchorLevel {
  level: number;
  /** Feature map height and width. */
  height: number;
  width: number;
  /** Stride in pixels (y, x): input size / feature size. */
  stride: [number, number];
  /** Index of the level's first anchor. */
  offset: number;
  /** height * width * anchorsPerLocation. */
  count: number;
}

export interface Anchors {
  /** [count, 4] yxyx, float32. */
  boxes: Float32Array;
  count: number;
  anchorsPerLocation: number;
  /** [height, width]. */
  imageSize: [number, number];
  levels: AnchorLevel[];
}

/** effdet's get_feat_sizes: (h, w) at every level from 0 to maxLevel, each (s - 1) // 2 + 1 of the one before. */
export function featureSizes(imageSize: readonly [number, number], maxLevel: number): [number, number][] {
  const sizes: [number, number][] = [[imageSize[0], imageSize[1]]];
  for (let l = 1; l <= maxLevel; l++) {
    const [h, w] = sizes[l - 1]!;
    sizes.push([Math.floor((h - 1) / 2) + 1, Math.floor((w - 1) / 2) + 1]);
  }
  return sizes;
}

/** numpy's `arange(start, stop, step)` for floats: start, start + step, then start + i * ((start + step) - start). */
function arange(start: number, stop: number, step: number): Float64Array {
  const n = Math.max(Math.ceil((stop - start) / step), 0);
  const out = new Float64Array(n);
  if (n > 0) out[0] = start;
  if (n > 1) out[1] = start + step;
  const delta = start + step - start;
  for (let i = 2; i < n; i++) out[i] = start + i * delta;
  return out;
}

function checkOptions(o: AnchorOptions): [number, number] {
  const size: [number, number] = typeof o.imageSize === 'number' ? [o.imageSize, o.imageSize] : [o.imageSize[0], o.imageSize[1]];
  if (!size.every((s) => Number.isInteger(s) && s >= 1)) throw new InvalidSpecError('anchor imageSize', o.imageSize, 'a positive integer side or [height, width]');
  if (!(Number.isInteger(o.minLevel) && Number.isInteger(o.maxLevel) && o.minLevel >= 1 && o.maxLevel >= o.minLevel)) {
    throw new InvalidSpecError('anchor levels', [o.minLevel, o.maxLevel], 'integers with 1 <= minLevel <= maxLevel');
  }
  if (!(Number.isInteger(o.numScales) && o.numScales >= 1)) throw new InvalidSpecError('anchor numScales', o.numScales, 'a positive integer');
  if (o.aspectRatios.length === 0) throw new InvalidSpecError('anchor aspectRatios', o.aspectRatios, 'at least one ratio');
  const numLevels = o.maxLevel - o.minLevel + 1;
  if (typeof o.anchorScale !== 'number' && o.anchorScale.length !== numLevels) {
    throw new InvalidSpecError('anchorScale', o.anchorScale, `one number, or one per level (${numLevels})`);
  }
  return size;
}

/** Multi-level anchors exactly as effdet's `Anchors(min_level, max_level, num_scales, aspect_ratios, anchor_scale, image_size).boxes`. */
export function generateAnchors(options: AnchorOptions): Anchors {
  const imageSize = checkOptions(options);
  const { minLevel, maxLevel, numScales, aspectRatios } = options;
  const feat = featureSizes(imageSize, maxLevel);
  const perLocation = numScales * aspectRatios.length;
  const levels: AnchorLevel[] = [];
  let total = 0;
  for (let level = minLevel; level <= maxLevel; level++) {
    const [h, w] = feat[level]!;
    const stride: [number, number] = [feat[0]![0] / h, feat[0]![1] / w];
    levels.push({ level, height: h, width: w, stride, offset: total, count: h * w * perLocation });
    total += h * w * perLocation;
  }
  const boxes = new Float32Array(total * 4);
  for (const lv of levels) {
    const anchorScale = typeof options.anchorScale === 'number' ? options.anchorScale : options.anchorScale[lv.level - minLevel]!;
    const [sy, sx] = lv.stride;
    const xs = arange(sx / 2, imageSize[1], sx);
    const ys = arange(sy / 2, imageSize[0], sy);
    // A grid that does not match the feature size (possible for odd sizes) would misalign the heads' outputs.
    if (xs.length !== lv.width || ys.length !== lv.height) {
      throw new InvalidSpecError('anchor imageSize', imageSize, `a size whose level-${lv.level} grid (${ys.length}x${xs.length}) matches its feature map (${lv.height}x${lv.width})`);
    }
    let a = 0;
    for (let s = 0; s < numScales; s++) {
      const octave = s / numScales;
      for (const aspect of aspectRatios) {
        let ax: number;
        let ay: number;
        if (typeof aspect === 'number') {
          ax = Math.sqrt(aspect);
          ay = 1.0 / ax;
        } else {
          [ax, ay] = aspect;
        }
        const halfX = (anchorScale * sx * 2 ** octave * ax) / 2.0;
        const halfY = (anchorScale * sy * 2 ** octave * ay) / 2.0;
        for (let y = 0; y < lv.height; y++) {
          for (let x = 0; x < lv.width; x++) {
            const o = (lv.offset + (y * lv.width + x) * perLocation + a) * 4;
            boxes[o] = ys[y]! - halfY;
            boxes[o + 1] = xs[x]! - halfX;
            boxes[o + 2] = ys[y]! + halfY;
            boxes[o + 3] = xs[x]! + halfX;
          }
        }
        a++;
      }
    }
  }
  return { boxes, count: total, anchorsPerLocation: perLocation, imageSize, levels };
}

/** The anchors of a detector graph (its metadata: levels, scales, ratios, anchor scale) at an input size (default its own). */
export function detectorAnchors(graph: Graph, size?: readonly [number, number]): Anchors {
  const m = readDetectionMetadata(graph);
  return generateAnchors({ minLevel: m.minLevel, maxLevel: m.maxLevel, numScales: m.numScales, aspectRatios: m.aspectRatios, anchorScale: m.anchorScale, imageSize: size ? [size[0], size[1]] : m.imageSize });
}
