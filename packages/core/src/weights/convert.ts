import { InvalidSpecError } from '../errors.js';
import type { EfficientNetSpec } from '../spec.js';
import type { TensorMap } from '../tensor.js';
import { fromTorchvision } from './torchvision.js';

/**
 * How the tensors in a weight file are named. timm (and its tf_* ports) use the canonical names already, and so does
 * effdet for detectors: a detector's canonical names are effdet's state_dict names (`backbone.*` timm's, `fpn.*`,
 * `class_net.*`, `box_net.*`).
 */
export type WeightNaming = 'effnet' | 'timm' | 'torchvision' | 'effdet';
export const WEIGHT_NAMINGS: readonly WeightNaming[] = ['effnet', 'timm', 'torchvision', 'effdet'];

/** Renames a state_dict of the given naming scheme to canonical names. */
export function toCanonicalNames(naming: WeightNaming, spec: EfficientNetSpec, tensors: TensorMap): TensorMap {
  switch (naming) {
    case 'effnet':
    case 'timm':
    case 'effdet':
      return tensors;
    case 'torchvision':
      return fromTorchvision(spec, tensors);
    default:
      throw new InvalidSpecError('weights format', naming, `one of ${WEIGHT_NAMINGS.join(', ')}`);
  }
}
