import { InvalidSpecError, UnknownVariantError } from '../errors.js';
import { roundFilters } from '../scaling.js';
import { canonicalVariantName } from '../variants.js';
import { FUSION_METHODS, type FusionMethod } from './bifpn.js';

/**
 * An EfficientDet: an EfficientNet backbone, a BiFPN over levels minLevel..maxLevel and class/box nets shared across
 * levels. Fields follow effdet's `get_efficientdet_config` (rwightman/efficientdet-pytorch), which follows automl.
 */
export interface EfficientDetConfig {
  name: string;
  /** Backbone variant (a name `specFor` resolves); its stride 8, 16 and 32 endpoints feed levels 3, 4, 5. */
  backbone: string;
  /** Stochastic depth of the backbone (training only). */
  backboneDropPath: number;
  /** Training/evaluation image size [height, width]. */
  imageSize: [number, number];
  numClasses: number;
  minLevel: number;
  maxLevel: number;
  /** Anchors per location = numScales * aspectRatios.length. */
  numScales: number;
  /** (w, h) multipliers of the base anchor, effdet's pairs: (1, 1), (1.4, 0.7), (0.7, 1.4). */
  aspectRatios: [number, number][];
  anchorScale: number;
  fpnChannels: number;
  fpnCellRepeats: number;
  boxClassRepeats: number;
  fusion: FusionMethod;
  /** Activation of the BiFPN and the heads (the backbone keeps its own). */
  act: 'silu' | 'relu6';
  /** `same`: TF SAME (the automl ports, tf_*); `symmetric`: PyTorch padding (effdet's own trainings). */
  padding: 'same' | 'symmetric';
  /** Biases on convs followed by BatchNorm (automl's graphs have them; effdet's own trainings do not). */
  redundantBias: boolean;
  /** Head BatchNorm names `bn_rep.<level>.<repeat>` instead of `bn_rep.<repeat>.<level>.bn`. */
  headBnLevelFirst: boolean;
  /** BiFPN and head BatchNorm (TF's: eps 1e-3, momentum 0.99 = 0.01 in PyTorch terms). */
  bnEps: number;
  bnMomentum: number;
}

/** effdet's anchors: 3 scales x 3 aspect ratios. */
const ASPECT_RATIOS: [number, number][] = [
  [1.0, 1.0],
  [1.4, 0.7],
  [0.7, 1.4],
];

const COMMON = {
  numClasses: 90,
  minLevel: 3,
  maxLevel: 7,
  numScales: 3,
  aspectRatios: ASPECT_RATIOS,
  headBnLevelFirst: false,
  bnEps: 1e-3,
  bnMomentum: 0.01,
} as const;

type Row = [
  name: string,
  backbone: string,
  image: number,
  fpnChannels: number,
  fpnCellRepeats: number,
  boxClassRepeats: number,
  anchorScale: number,
  fusion: FusionMethod,
  backboneDropPath: number,
  extra?: Partial<EfficientDetConfig>,
];

/** automl's EfficientDet D0-D7x as ported by effdet (`tf_efficientdet_*`): TF SAME padding, redundant biases. */
const TF_ROWS: Row[] = [
  ['d0', 'b0', 512, 64, 3, 3, 4, 'fast', 0.2],
  ['d1', 'b1', 640, 88, 4, 3, 4, 'fast', 0.2],
  ['d2', 'b2', 768, 112, 5, 3, 4, 'fast', 0.2],
  ['d3', 'b3', 896, 160, 6, 4, 4, 'fast', 0.2],
  ['d4', 'b4', 1024, 224, 7, 4, 4, 'fast', 0.2],
  ['d5', 'b5', 1280, 288, 7, 4, 4, 'fast', 0.2],
  ['d6', 'b6', 1280, 384, 8, 5, 4, 'sum', 0.2],
  ['d7', 'b6', 1536, 384, 8, 5, 5, 'sum', 0.2],
  ['d7x', 'b7', 1536, 384, 8, 5, 4, 'sum', 0.2, { maxLevel: 8 }],
];

/** EfficientDet-Lite (automl's lite configs): Lite backbones, ReLU6, plain-sum fusion. */
const LITE_ROWS: Row[] = [
  ['lite0', 'lite0', 320, 64, 3, 3, 3, 'sum', 0],
  ['lite1', 'lite1', 384, 88, 4, 3, 3, 'sum', 0.2],
  ['lite2', 'lite2', 448, 112, 5, 3, 3, 'sum', 0.2],
  ['lite3', 'lite3', 512, 160, 6, 4, 4, 'sum', 0.2],
  ['lite3x', 'lite3', 640, 200, 6, 4, 3, 'sum', 0.2],
  ['lite4', 'lite4', 640, 224, 7, 4, 4, 'sum', 0.2],
];

/** effdet's own trainings on timm backbones (`efficientdet_*`): PyTorch padding, no redundant biases. */
const EFFDET_ROWS: Row[] = [
  ['d0', 'b0', 512, 64, 3, 3, 4, 'fast', 0.1],
  ['d1', 'b1', 640, 88, 4, 3, 4, 'fast', 0.2],
  ['d2', 'b2', 768, 112, 5, 3, 4, 'fast', 0.2],
  ['d3', 'b3', 896, 160, 6, 4, 4, 'fast', 0.2],
];

function fromRow(prefix: 'tf_' | '', [n, b, image, fpnChannels, fpnCellRepeats, boxClassRepeats, anchorScale, fusion, backboneDropPath, extra]: Row): EfficientDetConfig {
  const lite = n.startsWith('lite');
  return {
    ...COMMON,
    name: `${prefix}efficientdet_${n}`,
    backbone: `${prefix}efficientnet_${b}`,
    backboneDropPath,
    imageSize: [image, image],
    anchorScale,
    fpnChannels,
    fpnCellRepeats,
    boxClassRepeats,
    fusion,
    act: lite ? 'relu6' : 'silu',
    padding: prefix === 'tf_' ? 'same' : 'symmetric',
    redundantBias: prefix === 'tf_',
    ...extra,
  };
}

/** Every named EfficientDet. */
export const DETECTORS: readonly EfficientDetConfig[] = [
  ...TF_ROWS.map((r) => fromRow('tf_', r)),
  ...LITE_ROWS.map((r) => fromRow('tf_', r)),
  ...EFFDET_ROWS.map((r) => fromRow('', r)),
];
const BY_NAME = new Map(DETECTORS.map((d) => [d.name, d]));

/** `efficientdet_phi2`, `tf_efficientdet_phi-1`, `efficientdet_phi1.5`: any compound-scaled detector. */
const COMPOUND_NAME = /^(tf_)?efficientdet_phi(_?)(\d+(?:\.\d+)?)$/; // after canonicalVariantName, "-" reads "_"

/**
 * EfficientDet compound scaling (Tan et al. 2020, eq. 1-3) for any phi: BiFPN width 64 * 1.35^phi (to a multiple
 * of 8), BiFPN depth 3 + phi and head depth 3 + floor(phi / 3) (at least 1), image 512 + 128 * phi (at least 128),
 * on an EfficientNet compound-scaled by the same phi (`efficientnet_phi<phi>`), fast fusion, levels 3-7.
 * The paper's D0-D6 table rounds some widths by hand (D2 112 and D4 224, where the rule gives 120 and 216): the
 * named rows keep the table, compound names follow the rule.
 */
export function compoundDetector(phi: number, tf = false): EfficientDetConfig {
  if (typeof phi !== 'number' || !Number.isFinite(phi)) throw new InvalidSpecError('phi', phi, 'a finite number');
  const image = Math.max(128, Math.round(512 + 128 * phi));
  const prefix = tf ? 'tf_' : '';
  return {
    ...COMMON,
    name: `${prefix}efficientdet_phi${phi}`,
    backbone: `${prefix}efficientnet_phi${phi}`,
    backboneDropPath: 0.2,
    imageSize: [image, image],
    anchorScale: 4,
    fpnChannels: roundFilters(64, 1.35 ** phi),
    fpnCellRepeats: Math.max(1, Math.round(3 + phi)),
    boxClassRepeats: Math.max(1, 3 + Math.floor(phi / 3)),
    fusion: 'fast',
    act: 'silu',
    padding: tf ? 'same' : 'symmetric',
    redundantBias: tf,
  };
}

/** true when `name` names an EfficientDet (a row or a compound name). */
export function isDetectorName(name: string): boolean {
  const c = canonicalVariantName(String(name));
  return BY_NAME.has(c) || COMPOUND_NAME.test(c);
}

/** The config of a named EfficientDet; UnknownVariantError lists the known names. */
export function detectorConfig(name: string): EfficientDetConfig {
  const c = canonicalVariantName(String(name));
  const row = BY_NAME.get(c);
  if (row) return structuredClone(row);
  const m = COMPOUND_NAME.exec(c);
  if (m) return compoundDetector((m[2] ? -1 : 1) * Number(m[3]), Boolean(m[1]));
  throw new UnknownVariantError(String(name), [...DETECTORS.map((d) => d.name), 'efficientdet_phi<phi> (any compound-scaled detector, e.g. efficientdet_phi-1)']);
}

/** Throws InvalidSpecError naming the first field of a config that cannot build. */
export function validateDetectorConfig(c: EfficientDetConfig): void {
  const posInt = (field: string, v: unknown) => {
    if (!Number.isInteger(v) || (v as number) < 1) throw new InvalidSpecError(`detector.${field}`, v, 'a positive integer');
  };
  for (const f of ['numClasses', 'numScales', 'fpnChannels', 'fpnCellRepeats', 'boxClassRepeats', 'minLevel', 'maxLevel'] as const) posInt(f, c[f]);
  if (c.minLevel !== 3) throw new InvalidSpecError('detector.minLevel', c.minLevel, '3: levels 3, 4, 5 come from the backbone (strides 8, 16, 32) as in effdet');
  if (c.maxLevel < 5) throw new InvalidSpecError('detector.maxLevel', c.maxLevel, 'at least 5');
  if (!Array.isArray(c.imageSize) || c.imageSize.length !== 2) throw new InvalidSpecError('detector.imageSize', c.imageSize, '[height, width]');
  c.imageSize.forEach((v) => posInt('imageSize', v));
  if (!Array.isArray(c.aspectRatios) || c.aspectRatios.length === 0 || !c.aspectRatios.every((r) => Array.isArray(r) && r.length === 2 && r.every((v) => v > 0)))
    throw new InvalidSpecError('detector.aspectRatios', c.aspectRatios, 'non-empty list of positive (w, h) pairs');
  if (!(c.anchorScale > 0)) throw new InvalidSpecError('detector.anchorScale', c.anchorScale, 'a positive number');
  if (!FUSION_METHODS.includes(c.fusion)) throw new InvalidSpecError('detector.fusion', c.fusion, `one of ${FUSION_METHODS.join(', ')}`);
  if (c.act !== 'silu' && c.act !== 'relu6') throw new InvalidSpecError('detector.act', c.act, "'silu' or 'relu6'");
  if (c.padding !== 'same' && c.padding !== 'symmetric') throw new InvalidSpecError('detector.padding', c.padding, "'same' or 'symmetric'");
  if (!(c.bnEps > 0 && c.bnEps < 1)) throw new InvalidSpecError('detector.bnEps', c.bnEps, 'a small positive number such as 1e-3');
  if (!(c.bnMomentum > 0 && c.bnMomentum <= 1)) throw new InvalidSpecError('detector.bnMomentum', c.bnMomentum, 'a number in (0, 1]');
  if (!(c.backboneDropPath >= 0 && c.backboneDropPath < 1)) throw new InvalidSpecError('detector.backboneDropPath', c.backboneDropPath, 'a rate in [0, 1)');
}
