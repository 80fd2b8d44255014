import { decodeBlock } from './blocks.js';
import type { BaseArchitecture } from './architectures.js';
import { InvalidSpecError } from './errors.js';
import type { FamilyConventions } from './families.js';
import type { EfficientNetSpec, StageSpec } from './spec.js';

/**
 * Channels after width scaling, exactly as timm's `round_channels`/`make_divisible` and torchvision's
 * `_make_divisible`: nearest multiple of `divisor`, at least `divisor`, and never below `roundLimit` of the scaled
 * value (one more divisor is added when it would be).
 */
export function roundFilters(channels: number, width: number, divisor = 8, roundLimit = 0.9): number {
  const v = channels * width;
  let rounded = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (rounded < roundLimit * v) rounded += divisor;
  return rounded;
}

/** Repeats after depth scaling: ceil(repeats * depth), as both reference implementations. */
export function roundRepeats(repeats: number, depth: number): number {
  return Math.ceil(repeats * depth);
}

export interface ScaleOptions {
  name: string;
  width: number;
  depth: number;
  resolution: number;
  dropout: number;
  dropPathRate?: number;
  conventions: FamilyConventions;
}

/** Scales a base architecture's table by width and depth into a concrete spec. */
export function scaleArchitecture(base: BaseArchitecture, o: ScaleOptions): EfficientNetSpec {
  if (!(o.width > 0) || !Number.isFinite(o.width)) throw new InvalidSpecError('width', o.width, 'a positive finite multiplier');
  if (!(o.depth > 0) || !Number.isFinite(o.depth)) throw new InvalidSpecError('depth', o.depth, 'a positive finite multiplier');
  const ch = (c: number) => roundFilters(c, o.width, 8, base.roundLimit);
  const last = base.stages.length - 1;
  const stages: StageSpec[] = base.stages.map((s, i) => {
    const { block, repeats } = decodeBlock(s);
    const fixed = base.fixFirstLastRepeats && (i === 0 || i === last);
    return { block: { ...block, act: block.act, out: ch(block.out) }, repeats: fixed ? repeats : roundRepeats(repeats, o.depth) };
  });
  for (const st of stages) if (st.block.act === undefined) delete st.block.act;
  return {
    name: o.name,
    stemChannels: base.fixStem ? base.stemChannels : ch(base.stemChannels),
    stages,
    headChannels: base.fixHead ? base.headChannels : ch(base.headChannels),
    act: base.act,
    padding: o.conventions.padding,
    bnEps: o.conventions.bnEps,
    bnMomentum: o.conventions.bnMomentum,
    dropout: o.dropout,
    dropPathRate: o.dropPathRate ?? 0.2,
    resolution: o.resolution,
  };
}
