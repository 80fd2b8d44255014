/**
 * Overlapping scenes for segmentation (what effnet-shapes-seg was trained on; scenes.ts draws non-overlapping
 * scenes with boxes for both tasks): the effnet-shapes background with one to `maxShapes` shapes (the same six
 * classes, drawn and textured by shapes.ts, later ones occluding earlier ones) and the index mask of each pixel:
 * 0 = background, 1 + the shape's class where the topmost shape covers at least half of the pixel. Scene `index` of
 * stream `seed` is always the same image and mask.
 */
import { join } from 'node:path';
import { deriveSeed, forEachConcurrent, InvalidSpecError, seededRandom, writeFileAtomic } from '@effnet/core';
import { loadSharp, type RgbImage } from '../images/decode.js';
import { encodeIndexPng, type IndexMask } from '../segmentation/index-png.js';
import { SCENE_CLASSES } from './scenes.js';
import { renderLayers, SHAPE_CLASSES, type ShapeParams, shapeParams } from './shapes.js';


export interface ShapeScene {
  image: RgbImage;
  mask: IndexMask;
  /** The shapes drawn, bottom to top. */
  shapes: ShapeParams[];
}

export interface ShapeSceneOptions {
  /** Image side in pixels (default 64). */
  size?: number;
  /** Most shapes in a scene (default 3). */
  maxShapes?: number;
  supersample?: number;
}

const rgbDistance = (a: readonly number[], b: readonly number[]) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);

/** Scene `index` of stream `seed`. */
export function generateShapeScene(seed: number, index: number, o: ShapeSceneOptions = {}): ShapeScene {
  const size = o.size ?? 64;
  const maxShapes = o.maxShapes ?? 3;
  const ss = o.supersample ?? 4;
  if (!Number.isInteger(maxShapes) || maxShapes < 1) throw new InvalidSpecError('maxShapes', maxShapes, 'a positive integer');
  const rand = seededRandom(deriveSeed(seed, index, 7));
  const count = 1 + Math.floor(rand() * maxShapes);
  const shapes: ShapeParams[] = [];
  for (let k = 0; k < count; k++) {
    // Classes drawn at random (shapeParams cycles them by index): a scene may repeat a class or miss some.
    const base = shapeParams(seed, (index * 8 + k) * SHAPE_CLASSES.length + Math.floor(rand() * SHAPE_CLASSES.length), { size });
    // Smaller than a single-shape image (extent 25-55%), anywhere inside the scene.
    const radius = ((0.25 + 0.3 * rand()) * size) / 2;
    const p: ShapeParams = { ...base, radius, cx: radius + rand() * (size - 2 * radius), cy: radius + rand() * (size - 2 * radius), period: Math.max(3, base.period * 0.6) };
    if (k > 0) {
      // Later shapes sit on the first one's background: keep their colour away from it.
      const f = shapes[0]!;
      const bg = [0, 1, 2].map((c) => (f.bg0[c]! + f.bg1[c]!) / 2);
      if (rgbDistance(p.color, bg) < 100) {
        p.color = p.color.map((c) => 255 - c) as ShapeParams['color'];
        p.color2 = p.color2.map((c) => 255 - c) as ShapeParams['color2'];
      }
    }
    shapes.push(p);
  }
  // The first shape's background under all of them, later shapes on top.
  const { data, instances } = renderLayers(shapes[0]!, shapes, deriveSeed(seed, index, 1), ss);
  const mask = new Uint8Array(size * size);
  for (let i = 0; i < mask.length; i++) mask[i] = instances[i] ? shapes[instances[i]! - 1]!.label + 1 : 0;
  return { image: { data, width: size, height: size }, mask: { data: mask, width: size, height: size }, shapes };
}

export interface ShapeSceneDataset {
  root: string;
  classes: string[];
  count: number;
}

/**
 * Writes a segmentation dataset `dir/images/<n>.png`, `dir/masks/<n>.png` (palette index PNGs) and
 * `dir/classes.txt`: scenes 0 .. count-1 of stream `seed`. Files are written atomically; a larger dataset with the
 * same seed extends a smaller one.
 */
export async function generateShapeSceneDataset(dir: string, o: ShapeSceneOptions & { count: number; seed?: number }): Promise<ShapeSceneDataset> {
  if (!Number.isInteger(o.count) || o.count < 1) throw new InvalidSpecError('count', o.count, 'a positive integer number of scenes');
  const seed = o.seed ?? 0;
  const sharp = await loadSharp();
  const digits = String(o.count - 1).length;
  await writeFileAtomic(join(dir, 'classes.txt'), new TextEncoder().encode(`${SCENE_CLASSES.join('\n')}\n`), { mkdir: true });
  await forEachConcurrent(o.count, 4, async (n) => {
    const scene = generateShapeScene(seed, n, o);
    const stem = String(n).padStart(digits, '0');
    const png = await sharp(Buffer.from(scene.image.data), { raw: { width: scene.image.width, height: scene.image.height, channels: 3 } }).png().toBuffer();
    await writeFileAtomic(join(dir, 'images', `${stem}.png`), png, { mkdir: true, sync: false });
    await writeFileAtomic(join(dir, 'masks', `${stem}.png`), encodeIndexPng(scene.mask), { mkdir: true, sync: false });
  });
  return { root: dir, classes: [...SCENE_CLASSES], count: o.count };
}
