/**
 * ImageFolder datasets, as torchvision's `datasets.ImageFolder`: `root/<class>/**\/<image>`, classes are the
 * sorted sub-directory names, labels their positions, samples listed class by class in sorted path order.
 * Differences from torchvision: only image extensions (.jpg .jpeg .png .webp, any case) count, and hidden
 * entries (names starting with ".", such as macOS "._x.jpg" files or our own temporary files) are skipped.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { deriveSeed, InvalidSpecError, seededRandom } from '@effnet/core';
import { ImageFolderError } from './errors.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'] as const;

export interface Sample {
  /** Absolute path of the image file. */
  path: string;
  /** Index into the dataset's `classes`. */
  label: number;
}

export interface ImageFolder {
  /** Absolute path of the root. */
  root: string;
  /** Sorted class (sub-directory) names; a sample's label indexes this list. */
  classes: string[];
  samples: Sample[];
}

/** Whether `name` has one of IMAGE_EXTENSIONS, in any case. */
export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext) && lower.length > ext.length);
}

/** Code-unit order, as Python's sorted() on str (for names in the Basic Multilingual Plane). */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Every directory under `dir` (itself included, links followed, cycles cut) with its image files, sorted by name. */
async function walkImages(dir: string, seen: Set<string>, out: { dir: string; files: string[] }[]): Promise<void> {
  const real = await realpath(dir);
  if (seen.has(real)) return;
  seen.add(real);
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  const files: string[] = [];
  const subdirs: string[] = [];
  for (const e of entries) {
    const full = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const s = await stat(full).catch(() => undefined);
      isDir = s?.isDirectory() ?? false;
      isFile = s?.isFile() ?? false;
    }
    if (isDir) subdirs.push(full);
    else if (isFile && isImageFile(e.name)) files.push(full);
  }
  out.push({ dir, files: files.sort(byCodeUnit) });
  for (const sub of subdirs) await walkImages(sub, seen, out);
}

/** Image files under `dir` in torchvision's order: directories sorted by path, each directory's files sorted by name. */
async function listImages(dir: string): Promise<string[]> {
  const found: { dir: string; files: string[] }[] = [];
  await walkImages(dir, new Set(), found);
  found.sort((a, b) => byCodeUnit(a.dir, b.dir));
  return found.flatMap((d) => d.files);
}

/** Reads `root/<class>/**\/<image>` into sorted classes and labelled samples. */
export async function scanImageFolder(root: string): Promise<ImageFolder> {
  const abs = resolve(root);
  const info = await stat(abs).catch(() => undefined);
  if (!info) {
    throw new ImageFolderError(abs, 'does not exist; check the path (an ImageFolder root holds one sub-directory per class)');
  }
  if (!info.isDirectory()) {
    throw new ImageFolderError(abs, 'is a file, not a directory; pass the directory that holds one sub-directory per class');
  }
  const entries = (await readdir(abs, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  const classes: string[] = [];
  for (const e of entries) {
    const isDir = e.isDirectory() || (e.isSymbolicLink() && ((await stat(join(abs, e.name)).catch(() => undefined))?.isDirectory() ?? false));
    if (isDir) classes.push(e.name);
  }
  classes.sort(byCodeUnit);
  if (classes.length === 0) {
    const images = entries.filter((e) => isImageFile(e.name)).length;
    throw new ImageFolderError(
      abs,
      `has no class sub-directories${images > 0 ? ` (it holds ${images} image file(s) directly)` : ''}; ` +
        'ImageFolder expects root/<class>/<image>: put each class\'s images in a directory named after the class',
    );
  }
  const samples: Sample[] = [];
  const empty: string[] = [];
  for (let label = 0; label < classes.length; label++) {
    const files = await listImages(join(abs, classes[label]!));
    if (files.length === 0) empty.push(classes[label]!);
    for (const path of files) samples.push({ path, label });
  }
  if (empty.length > 0) {
    throw new ImageFolderError(
      abs,
      `no image files in the class director${empty.length === 1 ? 'y' : 'ies'} ${empty.map((c) => `"${c}"`).join(', ')} ` +
        `(extensions ${IMAGE_EXTENSIONS.join(' ')}, any case); add images or remove the director${empty.length === 1 ? 'y' : 'ies'}`,
    );
  }
  return { root: abs, classes, samples };
}

export interface SplitOptions {
  /** Fraction of each class that goes to validation, in [0, 1). */
  valFraction: number;
  /** Seed of the shuffle (default 0). */
  seed?: number;
}

export interface Split<T> {
  train: T[];
  val: T[];
}

/**
 * Splits samples per class (stratified): of a class's n samples, round(n * valFraction) go to validation,
 * at least one when valFraction > 0 and n >= 2, and never all of them. Which ones is a seeded shuffle of
 * each class on its own, so a class's split does not depend on the other classes. Both halves keep the
 * input order.
 */
export function splitSamples<T extends { label: number }>(samples: readonly T[], options: SplitOptions): Split<T> {
  const { valFraction } = options;
  const seed = options.seed ?? 0;
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new InvalidSpecError('valFraction', valFraction, 'a fraction in [0, 1) of each class to hold out for validation');
  }
  const byLabel = new Map<number, number[]>();
  samples.forEach((s, i) => {
    let list = byLabel.get(s.label);
    if (!list) byLabel.set(s.label, (list = []));
    list.push(i);
  });
  const isVal = new Uint8Array(samples.length);
  for (const [label, indices] of byLabel) {
    const n = indices.length;
    let nVal = Math.round(n * valFraction);
    if (valFraction > 0 && n >= 2) nVal = Math.min(Math.max(nVal, 1), n - 1);
    else if (n < 2) nVal = 0;
    if (nVal === 0) continue;
    // Fisher-Yates on a copy, seeded by (seed, label); the first nVal go to validation.
    const order = [...indices];
    const rand = seededRandom(deriveSeed(seed, label >>> 0, 0x5317));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < nVal; i++) isVal[order[i]!] = 1;
  }
  const train: T[] = [];
  const val: T[] = [];
  samples.forEach((s, i) => (isVal[i] ? val : train).push(s));
  return { train, val };
}

export interface LoadImageFoldersOptions {
  /** Root of the training ImageFolder. */
  train: string;
  /** Root of a separate validation ImageFolder with the same classes; when given, valFraction is not used. */
  val?: string;
  /** Without `val`: fraction of each training class held out for validation (default 0.1). */
  valFraction?: number;
  /** Without `val`: seed of the split (default 0). */
  seed?: number;
}

export interface ImageFolderSplit {
  classes: string[];
  train: Sample[];
  val: Sample[];
  /** 'folders' when train and val came from separate roots, 'seeded' when split from one. */
  source: 'folders' | 'seeded';
}

/** Training and validation samples, from two ImageFolder roots (same classes) or a seeded stratified split of one. */
export async function loadImageFolders(options: LoadImageFoldersOptions): Promise<ImageFolderSplit> {
  const train = await scanImageFolder(options.train);
  if (options.val === undefined) {
    const { train: t, val: v } = splitSamples(train.samples, { valFraction: options.valFraction ?? 0.1, seed: options.seed ?? 0 });
    return { classes: train.classes, train: t, val: v, source: 'seeded' };
  }
  const val = await scanImageFolder(options.val);
  const onlyTrain = train.classes.filter((c) => !val.classes.includes(c));
  const onlyVal = val.classes.filter((c) => !train.classes.includes(c));
  if (onlyTrain.length > 0 || onlyVal.length > 0) {
    const parts: string[] = [];
    if (onlyTrain.length > 0) parts.push(`only in train (${train.root}): ${onlyTrain.map((c) => `"${c}"`).join(', ')}`);
    if (onlyVal.length > 0) parts.push(`only in val (${val.root}): ${onlyVal.map((c) => `"${c}"`).join(', ')}`);
    throw new ImageFolderError(
      val.root,
      `its classes differ from the training folder's, so labels would not line up: ${parts.join('; ')}; ` +
        'give both folders the same class directories (an empty one is not enough: each needs images)',
    );
  }
  return { classes: train.classes, train: train.samples, val: val.samples, source: 'folders' };
}
