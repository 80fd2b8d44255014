/**
 * The COCO object-detection formats as plain types, and the checks that turn parsed JSON into them with errors that
 * name the file and the entry at fault. Boxes are COCO's `[x, y, width, height]` in pixels.
 */
import { readFile } from 'node:fs/promises';
import { CocoFormatError } from './errors.js';

export interface CocoImage {
  id: number;
  file_name?: string;
  width?: number;
  height?: number;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  /** `[x, y, width, height]` in pixels. */
  bbox: number[];
  /** Area used for the area ranges of COCO evaluation (COCO stores the segmentation's area, not the box's). */
  area?: number;
  iscrowd?: number | boolean;
  ignore?: number | boolean;
}

export interface CocoCategory {
  id: number;
  name?: string;
  supercategory?: string;
}

/** A COCO annotations file (`instances_val2017.json` and the like). */
export interface CocoGroundTruth {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

/** One entry of a COCO results file. */
export interface CocoDetection {
  image_id: number;
  category_id: number;
  /** `[x, y, width, height]` in pixels. */
  bbox: number[];
  score: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `annotations[12] (id 57)`: where an entry sits, and its id when it has a usable one. */
export function cocoEntry(list: string, index: number, item: unknown): string {
  const id = isRecord(item) ? item.id : undefined;
  return typeof id === 'number' || typeof id === 'string' ? `${list}[${index}] (id ${id})` : `${list}[${index}]`;
}

function checkNumber(source: string, entry: string, item: Record<string, unknown>, field: string): number {
  const v = item[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new CocoFormatError(source, entry, `"${field}" must be a finite number, got ${show(v)}`);
  }
  return v;
}

/** A COCO box `[x, y, w, h]` of four finite numbers with w, h >= 0. */
function checkBox(source: string, entry: string, item: Record<string, unknown>): number[] {
  const b = item.bbox;
  if (!Array.isArray(b) || b.length !== 4 || !b.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new CocoFormatError(source, entry, `"bbox" must be [x, y, width, height] (four finite numbers), got ${show(b)}`);
  }
  if (b[2] < 0 || b[3] < 0) {
    throw new CocoFormatError(source, entry, `"bbox" ${show(b)} has a negative width or height; COCO boxes are [x, y, width, height], not corner pairs`);
  }
  return b as number[];
}

function checkFlag(source: string, entry: string, item: Record<string, unknown>, field: string): void {
  const v = item[field];
  if (v !== undefined && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
    throw new CocoFormatError(source, entry, `"${field}" must be 0, 1 or a boolean, got ${show(v)}`);
  }
}

function checkList(source: string, root: Record<string, unknown>, key: string, fix: string): unknown[] {
  const v = root[key];
  if (!Array.isArray(v)) throw new CocoFormatError(source, '', `"${key}" must be an array, got ${show(v)}; ${fix}`);
  return v;
}

/** Ids of a list, each a finite number and unique; returns them in list order. */
function checkIds(source: string, list: unknown[], name: string): number[] {
  const seen = new Map<number, number>();
  return list.map((item, i) => {
    const entry = cocoEntry(name, i, item);
    if (!isRecord(item)) throw new CocoFormatError(source, entry, `must be an object, got ${show(item)}`);
    const id = checkNumber(source, entry, item, 'id');
    const first = seen.get(id);
    if (first !== undefined) throw new CocoFormatError(source, entry, `duplicate id ${id} (also ${name}[${first}]); ids must be unique`);
    seen.set(id, i);
    return id;
  });
}

export interface CheckGroundTruthOptions {
  /** Require `area` on every annotation (COCO evaluation reads it). Default true. */
  requireArea?: boolean;
}

/**
 * Checks parsed JSON as a COCO annotations object: `images`, `annotations` and `categories` arrays; unique numeric
 * ids; every annotation on a known image and category with a `[x, y, w, h]` box (w, h >= 0) and, unless
 * `requireArea` is false, an `area`. Returns the same object, typed.
 *
 * @param source the file name errors name
 */
export function checkCocoGroundTruth(value: unknown, source = 'ground truth', options: CheckGroundTruthOptions = {}): CocoGroundTruth {
  const requireArea = options.requireArea ?? true;
  if (!isRecord(value)) {
    throw new CocoFormatError(source, '', `expected a COCO annotations object {images, annotations, categories}, got ${Array.isArray(value) ? 'an array (a results file?)' : show(value)}`);
  }
  const images = checkList(source, value, 'images', 'a COCO annotations file lists its images as {id, file_name, width, height}');
  const categories = checkList(source, value, 'categories', 'a COCO annotations file lists its categories as {id, name}');
  const annotations = checkList(source, value, 'annotations', 'a COCO annotations file lists its boxes as {id, image_id, category_id, bbox, area, iscrowd}');
  const imageIds = new Set(checkIds(source, images, 'images'));
  const categoryIds = new Set(checkIds(source, categories, 'categories'));
  checkIds(source, annotations, 'annotations');
  annotations.forEach((item, i) => {
    const ann = item as Record<string, unknown>;
    const entry = cocoEntry('annotations', i, ann);
    const imageId = checkNumber(source, entry, ann, 'image_id');
    if (!imageIds.has(imageId)) throw new CocoFormatError(source, entry, `image_id ${imageId} is not in "images"; add the image or remove the annotation`);
    const categoryId = checkNumber(source, entry, ann, 'category_id');
    if (!categoryIds.has(categoryId)) {
      throw new CocoFormatError(source, entry, `category_id ${categoryId} is not in "categories" (known: ${[...categoryIds].slice(0, 20).join(', ')}${categoryIds.size > 20 ? ', ...' : ''})`);
    }
    checkBox(source, entry, ann);
    if (requireArea || ann.area !== undefined) {
      if (ann.area === undefined) throw new CocoFormatError(source, entry, '"area" is missing; COCO evaluation takes the area from each annotation (for boxes alone, area = width * height)');
      checkNumber(source, entry, ann, 'area');
    }
    checkFlag(source, entry, ann, 'iscrowd');
    checkFlag(source, entry, ann, 'ignore');
  });
  return value as unknown as CocoGroundTruth;
}

export interface CheckDetectionsOptions {
  /**
   * Detections whose category is not in the ground truth's categories: `'error'` (default: usually 0-based class
   * indices where COCO category ids were meant) or `'ignore'` (pycocotools' behaviour: they are left out).
   */
  unknownCategories?: 'error' | 'ignore';
}

/**
 * Checks parsed JSON as a COCO results list against its ground truth: every entry `{image_id, category_id, bbox,
 * score}` with an image of the ground truth (pycocotools' loadRes asserts the same) and a known category.
 */
export function checkCocoDetections(value: unknown, gt: CocoGroundTruth, source = 'detections', options: CheckDetectionsOptions = {}): CocoDetection[] {
  if (!Array.isArray(value)) {
    throw new CocoFormatError(source, '', `expected a COCO results array [{image_id, category_id, bbox, score}, ...], got ${isRecord(value) ? 'an object (an annotations file?)' : show(value)}`);
  }
  const imageIds = new Set(gt.images.map((im) => im.id));
  const categoryIds = new Set(gt.categories.map((c) => c.id));
  value.forEach((item, i) => {
    const entry = `detection [${i}]`;
    if (!isRecord(item)) throw new CocoFormatError(source, entry, `must be an object {image_id, category_id, bbox, score}, got ${show(item)}`);
    const imageId = checkNumber(source, entry, item, 'image_id');
    if (!imageIds.has(imageId)) {
      throw new CocoFormatError(source, entry, `image_id ${imageId} is not an image of the ground truth; results must refer to images listed in the annotations file`);
    }
    const categoryId = checkNumber(source, entry, item, 'category_id');
    if (!categoryIds.has(categoryId) && (options.unknownCategories ?? 'error') === 'error') {
      throw new CocoFormatError(
        source,
        entry,
        `category_id ${categoryId} is not a category of the ground truth (known: ${[...categoryIds].slice(0, 20).join(', ')}${categoryIds.size > 20 ? ', ...' : ''}); ` +
          'results use COCO category ids, not class indices',
      );
    }
    checkBox(source, entry, item);
    checkNumber(source, entry, item, 'score');
  });
  return value as CocoDetection[];
}

/** Reads and parses a JSON file; a missing file or invalid JSON is a CocoFormatError naming it. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CocoFormatError(file, '', code === 'ENOENT' ? 'no such file; check the path' : code === 'EISDIR' ? 'is a directory, not a JSON file' : `cannot read it (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CocoFormatError(file, '', `is not valid JSON (${(e as Error).message})`);
  }
}
