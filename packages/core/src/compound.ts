import { BASE_ARCHITECTURES } from './architectures.js';
import { InvalidSpecError } from './errors.js';
import { familyConventions, type WeightFamily } from './families.js';
import { scaleArchitecture } from './scaling.js';
import type { EfficientNetSpec } from './spec.js';

export interface CompoundOptions {
  /** Compound coefficient: any real number (B0 is 0; negative gives smaller nets). */
  phi: number;
  /** Depth base, default 1.2 (the paper's). */
  alpha?: number;
  /** Width base, default 1.1. */
  beta?: number;
  /** Resolution base, default 1.15. */
  gamma?: number;
  /** Base architecture name, default 'efficientnet' (the B0 table). */
  base?: string;
  /** Resolution at phi = 0, default 224. */
  baseResolution?: number;
  family?: WeightFamily;
  /** Default: `efficientnet_phi<phi>`, a name specFor() resolves to the same network. */
  name?: string;
  /** Default: 0.2 + 0.05 * phi clamped to [0.2, 0.5] (the paper's B0..B7 run from 0.2 to 0.5). */
  dropout?: number;
}

export interface CompoundResult {
  phi: number;
  depth: number;
  width: number;
  resolution: number;
  spec: EfficientNetSpec;
}

/**
 * Compound scaling (Tan & Le 2019, eq. 3): depth alpha^phi, width beta^phi, resolution gamma^phi, so FLOPs grow by
 * about (alpha * beta^2 * gamma^2)^phi. Channel and repeat rounding follow the base architecture's rules.
 */
export function compound(o: CompoundOptions): CompoundResult {
  const { phi, alpha = 1.2, beta = 1.1, gamma = 1.15, base = 'efficientnet', baseResolution = 224, family = 'timm' } = o;
  if (typeof phi !== 'number' || !Number.isFinite(phi)) throw new InvalidSpecError('phi', phi, 'a finite number');
  for (const [field, v] of [['alpha', alpha], ['beta', beta], ['gamma', gamma]] as const)
    if (!(v >= 1) || !Number.isFinite(v)) throw new InvalidSpecError(field, v, 'a finite number >= 1');
  const arch = BASE_ARCHITECTURES[base];
  if (!arch) throw new InvalidSpecError('base', base, `one of ${Object.keys(BASE_ARCHITECTURES).join(', ')}`);
  const depth = alpha ** phi;
  const width = beta ** phi;
  const resolution = Math.max(32, Math.round(baseResolution * gamma ** phi));
  const dropout = o.dropout ?? Math.min(0.5, Math.max(0.2, 0.2 + 0.05 * phi));
  const spec = scaleArchitecture(arch, {
    name: o.name ?? `efficientnet_phi${phi}`,
    width,
    depth,
    resolution,
    dropout,
    conventions: familyConventions(family, arch.name, width),
  });
  return { phi, depth, width, resolution, spec };
}

export interface Coefficients {
  alpha: number;
  beta: number;
  gamma: number;
}

export interface ScoredCoefficients extends Coefficients {
  /** alpha * beta^2 * gamma^2: the FLOPs multiplier per unit of phi. */
  flopsFactor: number;
  score: number;
  /** The phi = 1 network the candidate describes. */
  spec: EfficientNetSpec;
  resolution: number;
}

export interface SearchOptions {
  /** Higher is better: e.g. a measured validation accuracy, or minus FLOPs. May be async. */
  score: (candidate: Coefficients & { spec: EfficientNetSpec; resolution: number }) => number | Promise<number>;
  /** alpha * beta^2 * gamma^2 target, default 2 (phi = 1 doubles the FLOPs). */
  target?: number;
  /** Accept candidates with |factor - target| <= tolerance * target. Default 0.05. */
  tolerance?: number;
  /** Grid step for each coefficient, default 0.05. */
  step?: number;
  /** Ranges searched, default [1, 2] for alpha and [1, 1.5] for beta and gamma. */
  alphaRange?: [number, number];
  betaRange?: [number, number];
  gammaRange?: [number, number];
  base?: string;
  baseResolution?: number;
}

const grid = ([lo, hi]: [number, number], step: number): number[] => {
  const out: number[] = [];
  for (let i = 0; lo + i * step <= hi + 1e-9; i++) out.push(Math.round((lo + i * step) * 1e6) / 1e6);
  return out;
};

/**
 * Step 1 of compound scaling (the paper's small grid search at phi = 1): every (alpha, beta, gamma) on the grid with
 * alpha * beta^2 * gamma^2 within tolerance of the target, scored by the caller, best first.
 */
export async function searchCoefficients(o: SearchOptions): Promise<ScoredCoefficients[]> {
  const { target = 2, tolerance = 0.05, step = 0.05, alphaRange = [1, 2], betaRange = [1, 1.5], gammaRange = [1, 1.5] } = o;
  if (typeof o.score !== 'function') throw new InvalidSpecError('score', o.score, 'a function (candidate) => number');
  if (!(step > 0)) throw new InvalidSpecError('step', step, 'a positive number');
  if (!(target > 1)) throw new InvalidSpecError('target', target, 'a number > 1');
  const out: ScoredCoefficients[] = [];
  for (const alpha of grid(alphaRange, step))
    for (const beta of grid(betaRange, step))
      for (const gamma of grid(gammaRange, step)) {
        const flopsFactor = alpha * beta ** 2 * gamma ** 2;
        if (Math.abs(flopsFactor - target) > tolerance * target) continue;
        const { spec, resolution } = compound({ phi: 1, alpha, beta, gamma, base: o.base, baseResolution: o.baseResolution });
        const score = await o.score({ alpha, beta, gamma, spec, resolution });
        if (typeof score !== 'number' || Number.isNaN(score))
          throw new InvalidSpecError('score(...)', score, `a number for alpha=${alpha} beta=${beta} gamma=${gamma}`);
        out.push({ alpha, beta, gamma, flopsFactor, score, spec, resolution });
      }
  return out.sort((a, b) => b.score - a.score);
}
