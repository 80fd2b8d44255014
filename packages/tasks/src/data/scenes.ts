/**
 * Generated scenes for detection and segmentation without downloading a dataset: several of the shapes of
 * `shapes.ts` (same classes, colours, fills and background) placed without overlap on one image, with exact
 * ground truth for both tasks: each object's tight box (from the antialiasing sub-samples) and a per-pixel class
 * mask. Every scene is a pure function of (seed, index): `sceneParams` draws the record, `renderScene` paints it.
 */
import { deriveSeed, forEachConcurrent, InvalidSpecError, seededRandom, writeFileAtomic } from '@effnet/core';
import { join } from 'node:path';
import {
  drawBackground,
  drawColors,
  drawLook,
  renderLayers,
  SHAPE_CLASSES,
  type SceneBackground,
  type ShapeClass,
  type ShapeParams,
} from './shapes.js';
import { loadSharp } from '../images/decode.js';

export interface SceneParams {
  background: SceneBackground;
  /** The shapes, painted in order; their circumscribed circles do not intersect. */
  objects: ShapeParams[];
}

export interface SceneOptions {
  /** Side of the square image in pixels (default 128). */
  size?: number;
  /** Fewest and most objects per scene (default [1, 4]); a scene holds fewer when they do not fit. */
  objects?: [number, number];
  /** Object extent (circumscribed diameter) as fractions of the side (default [0.22, 0.5]). */
  extent?: [number, number];
}

export interface SceneObject {
  label: number;
  className: ShapeClass;
  /** Tight box `[x0, y0, x1, y1]` in pixels (x right, y down) around the shape's covered area. */
  box: [number, number, number, number];
  /** Covered area in pixels. */
  area: number;
}

export interface SceneImage {
  /** RGB uint8, HWC, row-major. */
  data: Uint8Array;
  width: number;
  height: number;
  /** Per pixel: 0 background, 1 + the class index of the shape covering at least half of the pixel. */
  mask: Uint8Array;
  objects: SceneObject[];
}

/** The segmentation classes of a scene mask, index order: background, then the shape classes. */
export const SCENE_CLASSES = ['background', ...SHAPE_CLASSES] as const;

const DEFAULT_SCENE_SIZE = 128;
/** Gap in pixels kept between the circumscribed circles of two objects. */
const GAP = 2;
/** Placement attempts per object before a scene settles for fewer objects. */
const TRIES = 40;

function checkRange(name: string, v: [number, number] | undefined, lo: number, hi: number, integer: boolean, what: string): [number, number] | undefined {
  if (v === undefined) return undefined;
  const ok =
    Array.isArray(v) && v.length === 2 && v.every((x) => Number.isFinite(x) && (!integer || Number.isInteger(x)) && x >= lo && x <= hi) && v[0] <= v[1];
  if (!ok) throw new InvalidSpecError(name, v, `[min, max] with ${lo} <= min <= max <= ${hi} (${what})`);
  return v;
}

/** Draws scene `index` of the stream `seed`. */
export function sceneParams(seed: number, index: number, options: SceneOptions = {}): SceneParams {
  const size = options.size ?? DEFAULT_SCENE_SIZE;
  if (!Number.isInteger(size) || size < 16 || size > 4096) throw new InvalidSpecError('size', size, 'an integer number of pixels from 16 to 4096');
  if (!Number.isInteger(index) || index < 0) throw new InvalidSpecError('index', index, 'a non-negative integer');
  const [minObjects, maxObjects] = checkRange('objects', options.objects, 0, 64, true, 'objects per scene') ?? [1, 4];
  const [minExtent, maxExtent] = checkRange('extent', options.extent, 0.05, 1, false, 'fractions of the image side') ?? [0.22, 0.5];
  const rand = seededRandom(deriveSeed(seed, index, 2));
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rand();
  const bg = drawBackground(rand);
  const background: SceneBackground = { ...bg, size, pixelNoise: uniform(2, 9) };
  const count = minObjects + Math.floor(rand() * (maxObjects - minObjects + 1));
  const objects: ShapeParams[] = [];
  for (let n = 0; n < count; n++) {
    const label = Math.floor(rand() * SHAPE_CLASSES.length);
    const className = SHAPE_CLASSES[label]!;
    const radius = (uniform(minExtent, maxExtent) * size) / 2;
    let placed: { cx: number; cy: number } | undefined;
    for (let t = 0; t < TRIES && placed === undefined; t++) {
      const cx = uniform(radius, size - radius);
      const cy = uniform(radius, size - radius);
      if (objects.every((o) => Math.hypot(o.cx - cx, o.cy - cy) >= o.radius + radius + GAP)) placed = { cx, cy };
    }
    // The look is drawn either way, so that one object failing to fit does not change the ones after it.
    const { color, color2 } = drawColors(rand, bg);
    const rotation = uniform(0, 2 * Math.PI);
    const look = drawLook(rand, className, size);
    if (placed === undefined) continue;
    objects.push({ ...background, label, className, ...placed, radius, rotation, color, color2, ...look });
  }
  return { background, objects };
}

/** Paints a scene record, with its boxes and class mask. `noiseSeed` drives the per-pixel noise. */
export function renderScene(p: SceneParams, noiseSeed: number, options: { supersample?: number } = {}): SceneImage {
  const { size } = p.background;
  const { data, instances, extents } = renderLayers(p.background, p.objects, noiseSeed, options.supersample ?? 4);
  const mask = new Uint8Array(instances.length);
  for (let i = 0; i < instances.length; i++) {
    const k = instances[i]!;
    mask[i] = k === 0 ? 0 : p.objects[k - 1]!.label + 1;
  }
  const objects: SceneObject[] = p.objects.map((o, k) => {
    const e = extents[k]!;
    const clip = (v: number): number => Math.min(size, Math.max(0, v));
    return { label: o.label, className: o.className, box: [clip(e.box[0]), clip(e.box[1]), clip(e.box[2]), clip(e.box[3])], area: e.area };
  });
  return { data, width: size, height: size, mask, objects };
}

/** Scene `index` of the stream `seed`: pixels, class mask and boxes. */
export function generateScene(seed: number, index: number, options: SceneOptions & { supersample?: number } = {}): SceneImage {
  const { supersample, ...rest } = options;
  return renderScene(sceneParams(seed, index, rest), deriveSeed(seed, index, 3), supersample === undefined ? {} : { supersample });
}

export interface SceneDatasetOptions extends SceneOptions {
  /** Number of scenes. */
  count: number;
  /** Stream seed (default 0). */
  seed?: number;
}

export interface SceneDataset {
  root: string;
  /** Detection categories (COCO ids 1..6, in SHAPE_CLASSES order). */
  categories: { id: number; name: ShapeClass }[];
  /** Segmentation classes, mask index order (SCENE_CLASSES). */
  classes: string[];
  images: number;
  objects: number;
}

/**
 * Writes one dataset for both tasks: `dir/images/<n>.png`, `dir/annotations.json` (COCO detection: one category per
 * shape class, ids 1..6, boxes `[x, y, w, h]`, area the covered pixels), `dir/masks/<n>.png` (grey index PNGs,
 * 0 background, 1 + class) and `dir/classes.txt` (the mask's classes, index order). Scene n is
 * `generateScene(seed, n)`; files are written to temporary names and renamed.
 */
export async function generateSceneDataset(dir: string, options: SceneDatasetOptions): Promise<SceneDataset> {
  const { count, seed = 0, ...sceneOptions } = options;
  if (!Number.isInteger(count) || count < 1) throw new InvalidSpecError('count', count, 'a positive integer number of scenes');
  sceneParams(seed, 0, sceneOptions); // checks the options before anything is written
  const sharp = await loadSharp();
  const digits = String(count - 1).length;
  const categories = SHAPE_CLASSES.map((name, i) => ({ id: i + 1, name, supercategory: 'shape' }));
  const images: { id: number; file_name: string; width: number; height: number }[] = [];
  const annotations: { id: number; image_id: number; category_id: number; bbox: number[]; area: number; iscrowd: number }[][] = [];
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  await forEachConcurrent(count, 4, async (n) => {
    const scene = generateScene(seed, n, sceneOptions);
    const stem = String(n).padStart(digits, '0');
    const raw = (bytes: Uint8Array, channels: 1 | 3) =>
      sharp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { raw: { width: scene.width, height: scene.height, channels } });
    await writeFileAtomic(join(dir, 'images', `${stem}.png`), await raw(scene.data, 3).png().toBuffer(), { mkdir: true, sync: false });
    await writeFileAtomic(join(dir, 'masks', `${stem}.png`), await raw(scene.mask, 1).toColourspace('b-w').png().toBuffer(), { mkdir: true, sync: false });
    images[n] = { id: n + 1, file_name: `${stem}.png`, width: scene.width, height: scene.height };
    annotations[n] = scene.objects.map((o) => ({
      id: 0,
      image_id: n + 1,
      category_id: o.label + 1,
      bbox: [round(o.box[0]), round(o.box[1]), round(o.box[2] - o.box[0]), round(o.box[3] - o.box[1])],
      area: round(o.area),
      iscrowd: 0,
    }));
  });
  const flat = annotations.flat().map((a, i) => ({ ...a, id: i + 1 }));
  const json = JSON.stringify({ images, annotations: flat, categories });
  await writeFileAtomic(join(dir, 'annotations.json'), new TextEncoder().encode(json), { mkdir: true, sync: false });
  await writeFileAtomic(join(dir, 'classes.txt'), new TextEncoder().encode(`${SCENE_CLASSES.join('\n')}\n`), { mkdir: true, sync: false });
  return { root: dir, categories: categories.map(({ id, name }) => ({ id, name })), classes: [...SCENE_CLASSES], images: count, objects: flat.length };
}
