import { isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectorConfig, isDetectorName, type PaddingMode, resolveVariant, segmenterConfig, type Rgb, WEIGHT_FAMILIES, WEIGHT_NAMINGS, type WeightFamily, type WeightNaming } from '@effnet/core';
import type { RegistryProblem } from '../errors.js';

/** How a weight file is stored: safetensors, Keras HDF5, or a PyTorch checkpoint (.pth, read by core's safe reader). */
export type WeightFormat = 'safetensors' | 'h5' | 'pth';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['safetensors', 'h5', 'pth'];
/** Formats a user registry may declare. */
export const USER_FORMATS: readonly WeightFormat[] = ['safetensors', 'h5', 'pth'];

/**
 * How the tensors in the file are named; converters map each scheme to effnet's canonical (timm) names. effdet's
 * names are a detector's canonical names.
 */

/** What an entry's network does: classify (the default, `arch` is a variant) or detect (`arch` is a detector). */
export type EntryTask = 'classification' | 'detection' | 'segmentation';
export const ENTRY_TASKS: readonly EntryTask[] = ['classification', 'detection', 'segmentation'];

/**
 * Who trained (or named) a set of weights: a classifier's family brings its padding and BatchNorm conventions; a
 * detector's weights are effdet's (rwightman/efficientdet-pytorch), whose conventions are the detector's config.
 */
export type EntryFamily = WeightFamily | 'effdet';
export const ENTRY_FAMILIES: readonly EntryFamily[] = [...WEIGHT_FAMILIES, 'effdet'];

export type Interpolation = 'bicubic' | 'bilinear' | 'nearest';
const INTERPOLATIONS: readonly Interpolation[] = ['bicubic', 'bilinear', 'nearest'];

export const IMAGENET_MEAN: Rgb = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Rgb = [0.229, 0.224, 0.225];
/** timm's IMAGENET_INCEPTION_MEAN/STD, also TF's "[-1, 1]" scaling. */
export const HALF: Rgb = [0.5, 0.5, 0.5];

/**
 * How an image becomes the model's input: resize (keeping the aspect ratio) so that the centre crop of
 * `inputSize` covers `cropPct` of the short side (or resize the short side to `resizeSize`, torchvision's way),
 * crop, scale to [0, 1], then (x - mean) / std per channel, in NCHW float32.
 */
export interface Preprocessing {
  /** The crop size the model is run at by default (timm's input_size, torchvision's crop_size). */
  inputSize: number;
  /** timm's test_input_size: a larger size the publisher evaluates at (and reports top-1 for). */
  testInputSize?: number;
  /** Fraction of the resized image kept by the centre crop (timm's crop_pct). */
  cropPct?: number;
  /** timm's test_crop_pct, for testInputSize. */
  testCropPct?: number;
  /** Resize the short side to this before cropping (torchvision's resize_size). */
  resizeSize?: number;
  /** timm's crop_mode: 'squash' resizes to a square without keeping the aspect ratio. */
  cropMode?: 'center' | 'squash';
  /** Resampling filter; absent where the publisher does not say (consumers default to bicubic). */
  interpolation?: Interpolation;
  mean: Rgb;
  std: Rgb;
}

/** Family conventions a weight file overrides (normally they follow from the family and the architecture). */
export interface FamilyOverrides {
  padding?: PaddingMode;
  bnEps?: number;
}

/** One pretrained variant: what it is, where it comes from, how to check it, and how to feed it. */
export interface RegistryEntry {
  /** timm-style pretrained tag: `<arch>.<tag>`, e.g. `efficientnet_b0.ra_in1k`. */
  name: string;
  /**
   * An effnet variant name (`efficientnet_b0`, `tf_efficientnetv2_s`, torchvision's `efficientnet_v2_s`, ...), or for
   * a detection entry a detector name (`tf_efficientdet_d0`).
   */
  arch: string;
  /**
   * Absent: classification. 'detection': `arch` is an EfficientDet and the file holds its weights. 'segmentation':
   * `arch` is a segmenter (unet_efficientnet_b0) and the file holds its weights in smp's (= canonical) names.
   */
  task?: EntryTask;
  /** Whose conventions the weights follow (padding, BN eps); 'effdet' for detection entries. */
  family: EntryFamily;
  format: WeightFormat;
  /** How the tensors are named; defaults from the family (timm and tf: timm names). */
  naming: WeightNaming;
  /** https://, http://, file:// or a local path (relative paths are relative to the registry file). */
  url: string;
  /** The file's sha256, when the publisher pins one. Without it, the server's X-Linked-Etag/ETag is used if it is a sha256. */
  sha256?: string;
  /** torchvision's convention: the first hex digits of the sha256 in the file name (`-3dd342df.pth`). */
  sha256Prefix?: string;
  /** Keras publishes md5 hashes of its .h5 files. */
  md5?: string;
  /** Exact size in bytes, when published. */
  size?: number;
  /** The publisher's rounded size in MB, when only that is published (display only). */
  approxSizeMB?: number;
  overrides?: FamilyOverrides;
  preprocessing: Preprocessing;
  /** Label set, e.g. `imagenet-1k` (`coco-90` for COCO detectors: class id k is COCO category id k). */
  labels: string;
  /** Classifier width (a detector's class count); when absent it is read from the file. */
  numClasses?: number;
  /** For a .pth training checkpoint: the entry that holds the weights ('state_dict', 'model_ema'...); default: found automatically. */
  weightsKey?: string;
  license?: string;
  /** ImageNet-1k validation top-1 (%) as the publisher reports it. */
  top1?: number;
  /** The image size that top-1 was measured at. */
  top1Resolution?: number;
  /** Detection entries: COCO val2017 box mAP (%, AP at IoU 0.50:0.95) as the publisher reports it. */
  cocoMap?: number;
  /** Where the entry's figures come from. */
  reference?: string;
  notes?: string;
  /** 'builtin' or the registry file the entry came from. */
  origin: string;
}

/** What a registry file may hold for one entry: the entry without `origin`, most fields optional. */
export type RegistryEntryInput = Partial<Omit<RegistryEntry, 'origin' | 'preprocessing'>> & {
  preprocessing?: Partial<Preprocessing>;
};

const KNOWN_KEYS = new Set([
  'name',
  'arch',
  'family',
  'format',
  'naming',
  'url',
  'sha256',
  'sha256Prefix',
  'md5',
  'size',
  'approxSizeMB',
  'overrides',
  'preprocessing',
  'labels',
  'numClasses',
  'weightsKey',
  'license',
  'top1',
  'top1Resolution',
  'cocoMap',
  'task',
  'reference',
  'notes',
]);
const PREPROCESSING_KEYS = new Set(['inputSize', 'testInputSize', 'cropPct', 'testCropPct', 'resizeSize', 'cropMode', 'interpolation', 'mean', 'std']);

/** Model names are also cache directory names: letters, digits, '.', '_', '-', starting with a letter or digit. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function defaultNaming(family: EntryFamily): WeightNaming {
  switch (family) {
    case 'effdet':
      return 'effdet';
    case 'timm':
    case 'tf':
      return 'timm';
    case 'torchvision':
      return 'torchvision';
    case 'keras':
      return 'keras';
    case 'effnet':
      return 'effnet';
  }
}

/**
 * Preprocessing when an entry says nothing about it: the variant's resolution, ImageNet mean/std, crop 0.875, bicubic
 * (timm's defaults). An entry that gives some preprocessing fields gets only inputSize, mean and std by default.
 */
export function defaultPreprocessing(arch: string): Preprocessing {
  const row = resolveVariant(arch);
  return { inputSize: row.resolution, cropPct: 0.875, interpolation: 'bicubic', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
}

/**
 * A detector's preprocessing as effdet resolves it (`resolve_input_config`): the config's image size, bicubic, ImageNet
 * mean/std, or (0.5, 0.5, 0.5) for the EfficientDet-Lite models (effdet's `tf_efficientdet_lite_common`). Images are
 * letterboxed (resized to fit, pasted top-left on a canvas of the mean colour), never cropped.
 */
export function defaultDetectorPreprocessing(arch: string): Preprocessing {
  const config = detectorConfig(arch);
  const half = /^tf_efficientdet_lite/.test(config.name);
  return { inputSize: config.imageSize[0], interpolation: 'bicubic', mean: half ? [...HALF] : [...IMAGENET_MEAN], std: half ? [...HALF] : [...IMAGENET_STD] };
}

export interface ValidateOptions {
  /** User registries must pin a sha256 (the built-in one follows what publishers publish). */
  requireSha256: boolean;
  /** Which formats are accepted. */
  formats: readonly WeightFormat[];
  /** Directory that relative local paths are relative to. */
  baseDir?: string;
  origin: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v));

/** Is the url an http(s) URL (as opposed to a local file)? */
export function isRemote(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** A local source as an absolute path (file:// URLs and paths relative to the registry file). */
export function localPath(url: string, baseDir?: string): string {
  if (/^file:\/\//i.test(url)) return fileURLToPath(url);
  return isAbsolute(url) || !baseDir ? resolvePath(url) : resolvePath(baseDir, url);
}

/**
 * Checks one raw entry and fills its defaults. Returns the entry, or the problems found (all of them), each naming
 * the field at fault and what would be accepted.
 */
export function validateEntry(raw: unknown, where: string, o: ValidateOptions): { entry?: RegistryEntry; problems: RegistryProblem[] } {
  const problems: RegistryProblem[] = [];
  if (!isObject(raw)) {
    problems.push({ where, message: `${show(raw)} is not an object like {"name", "arch", "family", "format", "url", "sha256"}` });
    return { problems };
  }
  const label = typeof raw.name === 'string' ? `${where} ("${raw.name}")` : where;
  const at = (field: string) => `${label}.${field}`;
  const badAt = (field: string, value: unknown, expected: string) => problems.push({ where: at(field), message: `${show(value)} is not ${expected}` });

  for (const k of Object.keys(raw)) if (!KNOWN_KEYS.has(k)) problems.push({ where: at(k), message: `unknown field (known: ${[...KNOWN_KEYS].join(', ')})` });
  const required = ['name', 'arch', 'family', 'format', 'url', ...(o.requireSha256 ? ['sha256'] : [])];
  for (const k of required) if (raw[k] === undefined) problems.push({ where: at(k), message: 'is required' });

  const str = (k: string): string | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !v) {
      badAt(k, v, 'a non-empty string');
      return undefined;
    }
    return v;
  };
  const num = (k: string, ok: (n: number) => boolean, expected: string): number | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      badAt(k, v, expected);
      return undefined;
    }
    return v;
  };
  const hex = (k: string, len: number | [number, number]): string | undefined => {
    const v = str(k);
    if (v === undefined) return undefined;
    const [lo, hi] = typeof len === 'number' ? [len, len] : len;
    if (!/^[0-9a-fA-F]+$/.test(v) || v.length < lo || v.length > hi) {
      badAt(k, v, lo === hi ? `${lo} hex digits` : `${lo} to ${hi} hex digits`);
      return undefined;
    }
    return v.toLowerCase();
  };

  const name = str('name');
  if (name !== undefined && !NAME_PATTERN.test(name)) badAt('name', name, 'a name of letters, digits, ".", "_" and "-" (it names the cache directory)');

  const task = str('task') as EntryTask | undefined;
  if (task !== undefined && !ENTRY_TASKS.includes(task)) badAt('task', task, `one of ${ENTRY_TASKS.join(', ')} (default classification)`);
  const detection = task === 'detection';
  const segmentation = task === 'segmentation';

  const arch = str('arch');
  let archOk = false;
  if (arch !== undefined) {
    try {
      if (detection) detectorConfig(arch);
      else if (segmentation) segmenterConfig(arch);
      else resolveVariant(arch);
      archOk = true;
    } catch {
      if (detection) badAt('arch', arch, 'a known detector, as the task is detection (e.g. tf_efficientdet_d0, tf_efficientdet_lite0, efficientdet_d1; effnet info <name>)');
      else if (segmentation) badAt('arch', arch, 'a segmenter, as the task is segmentation (unet_, fpn_ or deeplabv3plus_<variant>; effnet info <name>)');
      else if (isDetectorName(arch)) badAt('arch', arch, 'a variant: it is a detector, so set "task": "detection"');
      else badAt('arch', arch, 'a known variant (run "effnet variants"; e.g. efficientnet_b0, tf_efficientnetv2_s, efficientnet_v2_s)');
    }
  }

  const family = str('family') as EntryFamily | undefined;
  if (family !== undefined && !ENTRY_FAMILIES.includes(family)) badAt('family', family, `one of ${ENTRY_FAMILIES.join(', ')}`);

  const format = str('format') as WeightFormat | undefined;
  if (format !== undefined && !o.formats.includes(format)) badAt('format', format, `one of ${o.formats.join(', ')}`);

  const naming = str('naming') as WeightNaming | undefined;
  if (naming !== undefined && !WEIGHT_NAMINGS.includes(naming)) badAt('naming', naming, `one of ${WEIGHT_NAMINGS.join(', ')}`);

  const url = str('url');
  if (url !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^(https?|file):\/\//i.test(url))
    badAt('url', url, 'an https://, http:// or file:// URL, or a local path');

  const sha256 = hex('sha256', 64);
  const sha256Prefix = hex('sha256Prefix', [6, 64]);
  const md5 = hex('md5', 32);
  const size = num('size', (n) => Number.isInteger(n) && n > 0, 'a positive integer (bytes)');
  const approxSizeMB = num('approxSizeMB', (n) => n > 0, 'a positive number (MB)');
  const numClasses = num('numClasses', (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const top1 = num('top1', (n) => n >= 0 && n <= 100, 'a percentage in [0, 100]');
  const top1Resolution = num('top1Resolution', (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const cocoMap = num('cocoMap', (n) => n >= 0 && n <= 100, 'a percentage in [0, 100]');
  const labels = str('labels');
  const license = str('license');
  const reference = str('reference');
  const notes = str('notes');
  const weightsKey = str('weightsKey');

  let overrides: FamilyOverrides | undefined;
  if (raw.overrides !== undefined) {
    if (!isObject(raw.overrides)) badAt('overrides', raw.overrides, 'an object like {"padding": "same", "bnEps": 0.001}');
    else {
      overrides = {};
      for (const k of Object.keys(raw.overrides)) if (k !== 'padding' && k !== 'bnEps') problems.push({ where: at(`overrides.${k}`), message: 'unknown field (known: padding, bnEps)' });
      const { padding, bnEps } = raw.overrides;
      if (padding !== undefined) {
        if (padding !== 'same' && padding !== 'symmetric') badAt('overrides.padding', padding, '"same" or "symmetric"');
        else overrides.padding = padding;
      }
      if (bnEps !== undefined) {
        if (typeof bnEps !== 'number' || !(bnEps > 0 && bnEps < 1)) badAt('overrides.bnEps', bnEps, 'a small positive number such as 1e-5 or 1e-3');
        else overrides.bnEps = bnEps;
      }
    }
  }

  const pre: Partial<Preprocessing> = {};
  if (raw.preprocessing !== undefined) {
    if (!isObject(raw.preprocessing)) badAt('preprocessing', raw.preprocessing, 'an object like {"inputSize": 224, "mean": [...], "std": [...]}');
    else {
      const p = raw.preprocessing;
      for (const k of Object.keys(p)) if (!PREPROCESSING_KEYS.has(k)) problems.push({ where: at(`preprocessing.${k}`), message: `unknown field (known: ${[...PREPROCESSING_KEYS].join(', ')})` });
      const posInt = (k: 'inputSize' | 'testInputSize' | 'resizeSize') => {
        if (p[k] === undefined) return;
        if (!Number.isInteger(p[k]) || (p[k] as number) < 1) badAt(`preprocessing.${k}`, p[k], 'a positive integer (pixels)');
        else pre[k] = p[k] as number;
      };
      posInt('inputSize');
      posInt('testInputSize');
      posInt('resizeSize');
      for (const k of ['cropPct', 'testCropPct'] as const) {
        if (p[k] === undefined) continue;
        if (typeof p[k] !== 'number' || !((p[k] as number) > 0 && (p[k] as number) <= 1)) badAt(`preprocessing.${k}`, p[k], 'a fraction in (0, 1]');
        else pre[k] = p[k] as number;
      }
      if (p.cropMode !== undefined) {
        if (p.cropMode !== 'center' && p.cropMode !== 'squash') badAt('preprocessing.cropMode', p.cropMode, '"center" or "squash"');
        else pre.cropMode = p.cropMode;
      }
      if (p.interpolation !== undefined) {
        if (!INTERPOLATIONS.includes(p.interpolation as Interpolation)) badAt('preprocessing.interpolation', p.interpolation, `one of ${INTERPOLATIONS.join(', ')}`);
        else pre.interpolation = p.interpolation as Interpolation;
      }
      for (const k of ['mean', 'std'] as const) {
        const v = p[k];
        if (v === undefined) continue;
        if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || (k === 'std' && !v.every((x) => x > 0)))
          badAt(`preprocessing.${k}`, v, `three numbers for R, G, B${k === 'std' ? ', all positive' : ''} (on the [0, 1] scale)`);
        else pre[k] = [v[0], v[1], v[2]] as Rgb;
      }
    }
  }

  if (problems.length || !name || !arch || !archOk || !family || !format || !url) return { problems };
  const defaults = detection ? defaultDetectorPreprocessing(arch) : defaultPreprocessing(segmentation ? segmenterConfig(arch).encoder : arch);
  const entry: RegistryEntry = {
    name,
    arch,
    family,
    format,
    naming: naming ?? defaultNaming(family),
    url: isRemote(url) ? url : localPath(url, o.baseDir),
    // No preprocessing at all: every default. Some: the required fields (size, mean, std) default, the rest stays unsaid.
    preprocessing: raw.preprocessing === undefined ? defaults : { inputSize: defaults.inputSize, mean: defaults.mean, std: defaults.std, ...pre },
    labels: labels ?? (detection ? 'coco-90' : 'imagenet-1k'),
    origin: o.origin,
  };
  const optional = { task, sha256, sha256Prefix, md5, size, approxSizeMB, overrides, numClasses, weightsKey, license, top1, top1Resolution, cocoMap, reference, notes };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) (entry as unknown as Record<string, unknown>)[k] = v;
  if (entry.naming === 'keras' && entry.format !== 'h5') problems.push({ where: at('format'), message: `Keras names come in .h5 files; "${format}" with naming keras is not supported` });
  if (entry.format === 'h5' && entry.naming !== 'keras') problems.push({ where: at('naming'), message: `.h5 files are read as Keras weights; set family "keras" (or naming "keras")` });
  if (entry.weightsKey !== undefined && entry.format !== 'pth') problems.push({ where: at('weightsKey'), message: `only .pth checkpoints have entries to choose from; remove it or set format "pth"` });
  if (detection) {
    if (entry.family !== 'effdet') problems.push({ where: at('family'), message: `${show(family)}: a detection entry's weights follow effdet's conventions (the detector's config); set family "effdet"` });
    if (naming !== undefined && naming !== 'effdet' && naming !== 'effnet') problems.push({ where: at('naming'), message: `${show(entry.naming)}: a detector's weights are read under effdet's names; set naming "effdet" (or leave it out)` });
    if (entry.overrides) problems.push({ where: at('overrides'), message: "a detector's padding and BatchNorm come from its config; remove overrides" });
    if (entry.top1 !== undefined || entry.top1Resolution !== undefined) problems.push({ where: at('top1'), message: 'is an ImageNet classification figure; a detection entry reports cocoMap' });
  } else {
    if (entry.family === 'effdet') problems.push({ where: at('family'), message: '"effdet" is the family of detection entries; set task "detection" (and a detector arch) or another family' });
    if (naming === 'effdet') problems.push({ where: at('naming'), message: '"effdet" names a detector\'s weights; set task "detection" (and a detector arch) or another naming' });
    if (entry.cocoMap !== undefined) problems.push({ where: at('cocoMap'), message: 'is a detection figure; set task "detection" or report top1' });
  }
  return problems.length ? { problems } : { entry, problems };
}
