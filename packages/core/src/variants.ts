import { BASE_ARCHITECTURES } from './architectures.js';
import { InvalidSpecError, UnknownVariantError } from './errors.js';
import { familyConventions, type WeightFamily } from './families.js';
import { scaleArchitecture } from './scaling.js';
import type { EfficientNetSpec } from './spec.js';

/** One row of the variant table: which base architecture, how it is scaled, and whose conventions it follows. */
export interface VariantRow {
  name: string;
  arch: string;
  width: number;
  depth: number;
  /** Evaluation resolution. */
  resolution: number;
  /** Training resolution where it differs (V2 trains smaller than it evaluates). */
  trainResolution?: number;
  dropout: number;
  /** The conventions (padding, BN eps) a model of this name follows unless weights say otherwise. */
  family: WeightFamily;
}

type Row = [name: string, width: number, depth: number, resolution: number, dropout: number, trainResolution?: number];

/** (width, depth, resolution, dropout) as in timm's `_gen_efficientnet` table (timm/models/efficientnet.py), B8 included. */
const V1_ROWS: Row[] = [
  ['b0', 1.0, 1.0, 224, 0.2],
  ['b1', 1.0, 1.1, 240, 0.2],
  ['b2', 1.1, 1.2, 260, 0.3],
  ['b3', 1.2, 1.4, 300, 0.3],
  ['b4', 1.4, 1.8, 380, 0.4],
  ['b5', 1.6, 2.2, 456, 0.4],
  ['b6', 1.8, 2.6, 528, 0.5],
  ['b7', 2.0, 3.1, 600, 0.5],
  ['b8', 2.2, 3.6, 672, 0.5],
  ['l2', 4.3, 5.3, 800, 0.5],
];
const LITE_ROWS: Row[] = [
  ['lite0', 1.0, 1.0, 224, 0.2],
  ['lite1', 1.0, 1.1, 240, 0.2],
  ['lite2', 1.1, 1.2, 260, 0.3],
  ['lite3', 1.2, 1.4, 280, 0.3],
  ['lite4', 1.4, 1.8, 300, 0.3],
];
const V2_ROWS: [name: string, arch: string, width: number, depth: number, res: number, dropout: number, train: number][] = [
  ['s', 'efficientnetv2_s', 1, 1, 384, 0.2, 300],
  ['m', 'efficientnetv2_m', 1, 1, 480, 0.3, 384],
  ['l', 'efficientnetv2_l', 1, 1, 480, 0.4, 384],
  ['xl', 'efficientnetv2_xl', 1, 1, 512, 0.4, 384],
  ['b0', 'efficientnetv2_base', 1.0, 1.0, 224, 0.2, 192],
  ['b1', 'efficientnetv2_base', 1.0, 1.1, 240, 0.2, 192],
  ['b2', 'efficientnetv2_base', 1.1, 1.2, 260, 0.3, 208],
  ['b3', 'efficientnetv2_base', 1.2, 1.4, 300, 0.3, 240],
];

function rows(): VariantRow[] {
  const out: VariantRow[] = [];
  for (const [prefix, family] of [['', 'timm'], ['tf_', 'tf']] as const) {
    for (const [n, width, depth, resolution, dropout] of V1_ROWS)
      out.push({ name: `${prefix}efficientnet_${n}`, arch: 'efficientnet', width, depth, resolution, dropout, family });
    for (const [n, width, depth, resolution, dropout] of LITE_ROWS)
      out.push({ name: `${prefix}efficientnet_${n}`, arch: 'efficientnet_lite', width, depth, resolution, dropout, family });
    for (const [n, arch, width, depth, resolution, dropout, trainResolution] of V2_ROWS)
      out.push({ name: `${prefix}efficientnetv2_${n}`, arch, width, depth, resolution, trainResolution, dropout, family });
  }
  return out;
}

/** Every named variant: timm's names (PyTorch conventions) and timm's tf_* ports (TensorFlow conventions). */
export const VARIANTS: readonly VariantRow[] = rows();
const BY_NAME = new Map(VARIANTS.map((v) => [v.name, v]));

/** torchvision's spellings (`efficientnet_v2_s`) and automl/Keras's (`efficientnet-b0`) for timm's names. */
export function canonicalVariantName(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/-/g, '_')
    .replace(/efficientnet_v2_/, 'efficientnetv2_');
}

/** `efficientnet_phi-3`, `tf_efficientnet_phi1.5`: any compound-scaled size (the paper's coefficients) by name. */
const COMPOUND_NAME = /^(tf_)?efficientnet_phi(_?)(\d+(?:\.\d+)?)$/; // after canonicalName, "-" reads "_"


/** The row of a compound-scaled name: depth 1.2^phi, width 1.1^phi, resolution 224 * 1.15^phi (see compound()). */
function compoundRow(name: string, tf: boolean, phi: number): VariantRow {
  return {
    name,
    arch: 'efficientnet',
    width: 1.1 ** phi,
    depth: 1.2 ** phi,
    resolution: Math.max(32, Math.round(224 * 1.15 ** phi)),
    dropout: Math.min(0.5, Math.max(0.2, 0.2 + 0.05 * phi)),
    family: tf ? 'tf' : 'timm',
  };
}

/** The variant row for a name or alias; UnknownVariantError lists the known names. */
export function resolveVariant(name: string): VariantRow {
  const canonical = canonicalVariantName(String(name));
  const row = BY_NAME.get(canonical);
  if (row) return row;
  const m = COMPOUND_NAME.exec(canonical);
  if (m) {
    const phi = (m[2] ? -1 : 1) * Number(m[3]);
    return compoundRow(`${m[1] ?? ''}efficientnet_phi${phi}`, Boolean(m[1]), phi);
  }
  throw new UnknownVariantError(String(name), [...VARIANTS.map((v) => v.name), 'efficientnet_phi<phi> (any compound-scaled size, e.g. efficientnet_phi-2.5)']);
}

export interface SpecOptions {
  /** Weights from another family bring their own padding and BN eps (e.g. torchvision B5: eps 1e-3). */
  family?: WeightFamily;
  resolution?: number;
  dropPathRate?: number;
}

/** The concrete spec of a named variant. */
export function specFor(name: string, options: SpecOptions = {}): EfficientNetSpec {
  const row = resolveVariant(name);
  const base = BASE_ARCHITECTURES[row.arch];
  if (!base) throw new InvalidSpecError(`variant ${row.name}.arch`, row.arch, `one of ${Object.keys(BASE_ARCHITECTURES).join(', ')}`);
  const resolution = options.resolution ?? row.resolution;
  if (!Number.isInteger(resolution) || resolution < 1) throw new InvalidSpecError('resolution', resolution, 'a positive integer');
  return scaleArchitecture(base, {
    name: row.name,
    width: row.width,
    depth: row.depth,
    resolution,
    dropout: row.dropout,
    dropPathRate: options.dropPathRate,
    conventions: familyConventions(options.family ?? row.family, row.arch, row.width),
  });
}
