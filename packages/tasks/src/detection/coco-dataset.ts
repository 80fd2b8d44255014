/**
 * COCO-layout detection datasets: `DIR/annotations.json` (COCO instances format) and the images it names by
 * `file_name`, relative to `DIR/images/` or else `DIR/`. Everything is checked up front, with errors that name the
 * entry: malformed or duplicate ids, unknown images or categories, non-positive image or box sizes, boxes outside
 * their image (beyond a tolerance; those within it are clipped), missing image files. Decoded images are checked
 * against the declared size when loaded.
 *
 * Classes are the categories in file order (effdet's parser: `cat_id_to_label` follows `getCatIds()`), as contiguous
 * 0-based indices; `categories[k].id` is class k's COCO id, for evaluation output. As effdet's parser, training boxes
 * leave out crowd and `ignore` annotations (kept apart as `ignoredBoxes`) and boxes under 1 px wide or high.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { decodeImage, type RgbImage } from '../images/decode.js';
import { checkCocoGroundTruth, readJsonFile, type CocoGroundTruth } from './coco-format.js';
import { DetectionDatasetError } from './errors.js';

/** A box [x1, y1, x2, y2] in pixels. */
export type Box = [number, number, number, number];

export interface DetectionSample {
  imageId: number;
  /** Absolute path of the image file. */
  file: string;
  width: number;
  height: number;
  /** Boxes to train on, xyxy pixels, clipped to the image. */
  boxes: Box[];
  /** Class index (0-based, into the dataset's categories) of each box. */
  classes: number[];
  /** Crowd and `ignore` boxes, xyxy (effdet's bbox_ignore). */
  ignoredBoxes: Box[];
}

export interface CocoDetectionDataset {
  /** Absolute path of DIR. */
  root: string;
  annotationsFile: string;
  /** Class k is category `categories[k]` (COCO id and name). */
  categories: { id: number; name: string }[];
  samples: DetectionSample[];
  /** The annotations as read (COCO ids), for evaluateCoco. */
  groundTruth: CocoGroundTruth;
}

export interface LoadCocoDetectionOptions {
  /** How far (pixels) a box may reach outside its image before it is an error; default 1. */
  boxTolerance?: number;
  /** Check that every image file exists (default true). */
  checkFiles?: boolean;
}

const MAX_LISTED = 5;

function listProblems(problems: string[]): string {
  const shown = problems.slice(0, MAX_LISTED).join('; ');
  return problems.length > MAX_LISTED ? `${shown}; and ${problems.length - MAX_LISTED} more` : shown;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/** Reads and checks a COCO detection dataset directory (see the module comment). */
export async function loadCocoDetection(dir: string, options: LoadCocoDetectionOptions = {}): Promise<CocoDetectionDataset> {
  const root = resolve(dir);
  const tolerance = options.boxTolerance ?? 1;
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new DetectionDatasetError(root, info ? 'is a file; pass the directory that holds annotations.json and the images' : 'does not exist; check the path (a COCO dataset directory holds annotations.json and images/)');
  }
  const annotationsFile = join(root, 'annotations.json');
  if (!(await isFile(annotationsFile))) {
    throw new DetectionDatasetError(root, 'has no annotations.json; put the COCO instances file (images, annotations, categories) there');
  }
  const gt = checkCocoGroundTruth(await readJsonFile(annotationsFile), annotationsFile, { requireArea: false });

  const problems: string[] = [];
  const images = new Map<number, { file_name: string; width: number; height: number }>();
  gt.images.forEach((im, i) => {
    const where = `images[${i}] (id ${im.id})`;
    if (typeof im.file_name !== 'string' || im.file_name === '') problems.push(`${where} has no file_name`);
    else if (!(Number.isFinite(im.width) && Number.isFinite(im.height) && im.width! > 0 && im.height! > 0)) {
      problems.push(`${where} "${im.file_name}" has a non-positive or missing size (width ${im.width}, height ${im.height})`);
    } else images.set(im.id, { file_name: im.file_name, width: im.width!, height: im.height! });
  });
  const classOf = new Map(gt.categories.map((c, k) => [c.id, k]));
  const samples = new Map<number, DetectionSample>();
  for (const im of gt.images) {
    const m = images.get(im.id);
    if (m) samples.set(im.id, { imageId: im.id, file: '', width: m.width, height: m.height, boxes: [], classes: [], ignoredBoxes: [] });
  }
  gt.annotations.forEach((a, i) => {
    const im = images.get(a.image_id);
    if (!im) return; // its image's own problem is reported
    const [x, y, w, h] = a.bbox as [number, number, number, number];
    const where = `annotations[${i}] (id ${a.id}) on image ${a.image_id} "${im.file_name}"`;
    if (!(w > 0 && h > 0)) {
      problems.push(`${where}: box [${a.bbox.join(', ')}] has a non-positive width or height`);
      return;
    }
    if (x < -tolerance || y < -tolerance || x + w > im.width + tolerance || y + h > im.height + tolerance) {
      problems.push(`${where}: box [${a.bbox.join(', ')}] reaches outside the ${im.width}x${im.height} image`);
      return;
    }
    const box: Box = [Math.max(x, 0), Math.max(y, 0), Math.min(x + w, im.width), Math.min(y + h, im.height)];
    const s = samples.get(a.image_id)!;
    if (a.iscrowd || a.ignore) s.ignoredBoxes.push(box);
    else if (w >= 1 && h >= 1) {
      s.boxes.push(box);
      s.classes.push(classOf.get(a.category_id)!);
    }
  });
  if (problems.length > 0) {
    throw new DetectionDatasetError(annotationsFile, `${problems.length} problem${problems.length > 1 ? 's' : ''}: ${listProblems(problems)}; fix the annotations (boxes are [x, y, width, height] in pixels)`);
  }

  // Image files: DIR/images/<file_name>, else DIR/<file_name>.
  const missing: string[] = [];
  const list = [...samples.values()];
  const checkFiles = options.checkFiles ?? true;
  for (let i = 0; i < list.length; i += 64) {
    await Promise.all(
      list.slice(i, i + 64).map(async (s, k) => {
        const name = images.get(s.imageId)!.file_name;
        const inImages = join(root, 'images', name);
        if (!checkFiles) {
          s.file = inImages;
          return;
        }
        if (await isFile(inImages)) s.file = inImages;
        else if (await isFile(join(root, name))) s.file = join(root, name);
        else missing[i + k] = `"${name}" (image ${s.imageId})`;
      }),
    );
  }
  // In the annotations' order, whichever check finished first (the list is sparse: one slot per image).
  const notFound = missing.filter((m) => m !== undefined);
  if (notFound.length > 0) {
    throw new DetectionDatasetError(root, `${notFound.length} image file${notFound.length > 1 ? 's' : ''} not found in ${join(root, 'images')} or ${root}: ${listProblems(notFound)}`);
  }
  return {
    root,
    annotationsFile,
    categories: gt.categories.map((c) => ({ id: c.id, name: c.name ?? String(c.id) })),
    samples: list,
    groundTruth: gt,
  };
}

/** Decodes a sample's image as RGB; an image whose size differs from its annotation is an error naming it. */
export async function loadDetectionImage(sample: DetectionSample): Promise<RgbImage> {
  const image = await decodeImage(sample.file);
  if (image.width !== sample.width || image.height !== sample.height) {
    throw new DetectionDatasetError(sample.file, `is ${image.width}x${image.height} but its annotation (image ${sample.imageId}) says ${sample.width}x${sample.height}; fix width/height in annotations.json`);
  }
  return image;
}
