import { blockParts, SE_CONVS } from '../block-layouts.js';
import { InvalidSpecError } from '../errors.js';
import type { EfficientNetSpec } from '../spec.js';
import type { TensorMap } from '../tensor.js';

/** torchvision's SqueezeExcitation children. */
const SE_PARTS = { fc1: SE_CONVS.reduce, fc2: SE_CONVS.expand } as const;

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
    // torchvision numbers a block's sub-modules (`block.<i>`) in the order of the layout's parts.
    const parts = blockParts(stage.block);
    for (let j = 0; j < stage.repeats; j++) {
      const tv = `features.${s + 1}.${j}.block`;
      const ours = `blocks.${s}.${j}`;
      parts.forEach((p, i) => {
        if (p === 'se') for (const [k, v] of Object.entries(SE_PARTS)) m.set(`${tv}.${i}.${k}`, `${ours}.${v}`);
        else {
          m.set(`${tv}.${i}.0`, `${ours}.${p.conv}`);
          m.set(`${tv}.${i}.1`, `${ours}.${p.bn}`);
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
