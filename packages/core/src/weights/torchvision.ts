import type { BlockSpec } from '../blocks.js';
import { InvalidSpecError } from '../errors.js';
import type { EfficientNetSpec } from '../spec.js';
import type { TensorMap } from '../tensor.js';

/** A conv followed by its BatchNorm (torchvision's Conv2dNormActivation: `.0` conv, `.1` bn), or squeeze-excite. */
type Part = readonly [conv: string, bn: string] | 'se';

/**
 * THE table from torchvision's EfficientNet module layout to canonical (timm) names. Each block is an ordered list of
 * torchvision sub-modules `block.<i>`; `se` appears only where the block has squeeze-excite, shifting what follows.
 * The zoo's converters reuse it.
 */
export const TORCHVISION_BLOCK_PARTS: Readonly<Record<'ds' | 'ir' | 'cn' | 'er', readonly Part[]>> = {
  /** MBConv without expansion: depthwise, SE, project. */
  ds: [['conv_dw', 'bn1'], 'se', ['conv_pw', 'bn2']],
  /** MBConv: expand, depthwise, SE, project. */
  ir: [['conv_pw', 'bn1'], ['conv_dw', 'bn2'], 'se', ['conv_pwl', 'bn3']],
  /** FusedMBConv with expand 1: one kxk conv. */
  cn: [['conv', 'bn1']],
  /** FusedMBConv: kxk expand, (SE), 1x1 project. */
  er: [['conv_exp', 'bn1'], 'se', ['conv_pwl', 'bn2']],
};

/** torchvision's SqueezeExcitation children. */
const SE_PARTS = { fc1: 'se.conv_reduce', fc2: 'se.conv_expand' } as const;

function layoutOf(b: BlockSpec): keyof typeof TORCHVISION_BLOCK_PARTS {
  if (b.type === 'mbconv') return b.expand === 1 ? 'ds' : 'ir';
  return b.expand === 1 ? 'cn' : 'er';
}

/** torchvision module prefix -> canonical module prefix, for every module of the spec. */
export function torchvisionPrefixes(spec: EfficientNetSpec): Map<string, string> {
  const m = new Map<string, string>([
    ['features.0.0', 'conv_stem'],
    ['features.0.1', 'bn1'],
    [`features.${spec.stages.length + 1}.0`, 'conv_head'],
    [`features.${spec.stages.length + 1}.1`, 'bn2'],
    ['classifier.1', 'classifier'],
  ]);
  spec.stages.forEach((stage, s) => {
    const parts = TORCHVISION_BLOCK_PARTS[layoutOf(stage.block)].filter((p) => p !== 'se' || stage.block.seRatio > 0);
    for (let j = 0; j < stage.repeats; j++) {
      const tv = `features.${s + 1}.${j}.block`;
      const ours = `blocks.${s}.${j}`;
      parts.forEach((p, i) => {
        if (p === 'se') for (const [k, v] of Object.entries(SE_PARTS)) m.set(`${tv}.${i}.${k}`, `${ours}.${v}`);
        else {
          m.set(`${tv}.${i}.0`, `${ours}.${p[0]}`);
          m.set(`${tv}.${i}.1`, `${ours}.${p[1]}`);
        }
      });
    }
  });
  return m;
}

/**
 * Renames a torchvision state_dict to canonical names. Names it does not know are kept as they are, so that
 * binding reports them as unexpected, by their own name.
 */
export function fromTorchvision(spec: EfficientNetSpec, tensors: TensorMap): TensorMap {
  const prefixes = torchvisionPrefixes(spec);
  const out: TensorMap = new Map();
  for (const [name, t] of tensors) {
    const dot = name.lastIndexOf('.');
    const ours = dot > 0 ? prefixes.get(name.slice(0, dot)) : undefined;
    out.set(ours ? `${ours}${name.slice(dot)}` : name, t);
  }
  return out;
}

/** Canonical weights under torchvision's names (the table read backwards), e.g. to hand a model to torchvision users. */
export function toTorchvision(spec: EfficientNetSpec, tensors: TensorMap): TensorMap {
  const inverse = new Map([...torchvisionPrefixes(spec)].map(([tv, ours]) => [ours, tv]));
  const out: TensorMap = new Map();
  for (const [name, t] of tensors) {
    const dot = name.lastIndexOf('.');
    const tv = dot > 0 ? inverse.get(name.slice(0, dot)) : undefined;
    if (!tv) throw new InvalidSpecError('weight name', name, 'a parameter of the spec (it has no torchvision name)');
    out.set(`${tv}${name.slice(dot)}`, t);
  }
  return out;
}
