/**
 * Segmentation datasets: `DIR/images/*` (any image effnet decodes) and `DIR/masks/<stem>.png` with the same stems,
 * index PNGs (greyscale, or palette read as indices as VOC's SegmentationClass), 255 = ignore; class names from
 * `DIR/classes.txt` (one per line, index order) or `class0 ..` up to the largest index the masks use.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { forEachConcurrent } from '@effnet/core';
import { decodeImage, type RgbImage } from '../images/decode.js';
import { decodeIndexPng, IGNORE_INDEX, type IndexMask, MaskError } from './index-png.js';

export interface SegmentationSample {
  stem: string;
  image: string;
  mask: string;
}

export interface SegmentationDataset {
  root: string;
  classes: string[];
  samples: SegmentationSample[];
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff']);

async function listDir(dir: string, what: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => !f.startsWith('.')).sort();
  } catch {
    throw new MaskError(`${dir} does not exist: a segmentation dataset is DIR/images/* and DIR/masks/<same stem>.png (${what})`);
  }
}

/** Reads a dataset's file list and classes; `masks` decodes every mask once to find the classes when no classes.txt. */
export async function loadSegmentationDataset(root: string): Promise<SegmentationDataset> {
  const images = (await listDir(join(root, 'images'), 'the images')).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()));
  const masks = new Set(await listDir(join(root, 'masks'), 'the index masks'));
  if (!images.length) throw new MaskError(`${join(root, 'images')} holds no images`);
  const samples: SegmentationSample[] = [];
  const missing: string[] = [];
  for (const f of images) {
    const stem = f.slice(0, f.length - extname(f).length);
    if (masks.has(`${stem}.png`)) samples.push({ stem, image: join(root, 'images', f), mask: join(root, 'masks', `${stem}.png`) });
    else missing.push(`${stem}.png`);
  }
  if (missing.length)
    throw new MaskError(`${join(root, 'masks')} lacks the masks of ${missing.length} image(s) (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}); every image needs masks/<its stem>.png`);
  let classes: string[];
  const text = await readFile(join(root, 'classes.txt'), 'utf8').catch(() => undefined);
  if (text !== undefined) {
    classes = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (!classes.length) throw new MaskError(`${join(root, 'classes.txt')} names no classes; write one class name per line, in index order`);
  } else {
    let top = 0;
    await forEachConcurrent(samples.length, 4, async (i) => {
      const m = await readMask(samples[i]!.mask);
      for (const v of m.data) if (v !== IGNORE_INDEX && v > top) top = v;
    });
    classes = Array.from({ length: top + 1 }, (_, i) => `class${i}`);
  }
  return { root, classes, samples };
}

export async function readMask(path: string): Promise<IndexMask> {
  return decodeIndexPng(new Uint8Array(await readFile(path)), path);
}

/** A sample's image and mask, checked: same size, every index a class or 255. */
export async function loadSegmentationPair(s: SegmentationSample, numClasses: number): Promise<{ image: RgbImage; mask: IndexMask }> {
  const [image, mask] = await Promise.all([decodeImage(s.image), readMask(s.mask)]);
  if (image.width !== mask.width || image.height !== mask.height)
    throw new MaskError(`${s.mask} is ${mask.width}x${mask.height}, its image ${s.image} is ${image.width}x${image.height}; a mask has its image's size`);
  for (const v of mask.data)
    if (v !== IGNORE_INDEX && v >= numClasses) throw new MaskError(`${s.mask} has class index ${v}, but the dataset has ${numClasses} classes (0-${numClasses - 1}, 255 = ignore); fix the mask or classes.txt`);
  return { image: { data: image.data, width: image.width, height: image.height }, mask };
}
