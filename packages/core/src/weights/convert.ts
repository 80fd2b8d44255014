import { InvalidSpecError } from '../errors.js';
import type { EfficientNetSpec } from '../spec.js';
import type { TensorMap } from '../tensor.js';
import { fromKeras } from './keras.js';
import { fromTorchvision } from './torchvision.js';

/**
 * How the tensors in a weight file are named. timm (and its tf_* ports) use the canonical names already, and so does
 * effdet for detectors: a detector's canonical names are effdet's state_dict names (`backbone.*` timm's, `fpn.*`,
 * `class_net.*`, `box_net.*`), and smp (segmentation_models_pytorch) for segmenters: `encoder.*` (timm's names),
 * `decoder.*`, `segmentation_head.*`.
 */
export const WEIGHT_NAMINGS = ['effnet', 'timm', 'torchvision', 'keras', 'effdet', 'smp'] as const;
export type WeightNaming = (typeof WEIGHT_NAMINGS)[number];

/**
 * Renames a state_dict of the given naming scheme to canonical names (Keras: `<layer>/<var>` keys, also transposed
 * to PyTorch layouts). What a converter drops or notices is pushed onto `notes`.
 */
export function toCanonicalNames(naming: WeightNaming, spec: EfficientNetSpec, tensors: TensorMap, notes: string[] = []): TensorMap {
  switch (naming) {
    case 'effnet':
    case 'timm':
    case 'effdet':
    case 'smp':
      return tensors;
    case 'torchvision':
      return fromTorchvision(spec, tensors);
    case 'keras': {
      const k = fromKeras(spec, tensors);
      notes.push(...k.notes);
      return k.tensors;
    }
    default:
      throw new InvalidSpecError('weights format', naming, `one of ${WEIGHT_NAMINGS.join(', ')}`);
  }
}

/** Where each naming keeps the classifier (weight, bias) and which weight axis counts the classes (Keras stores [in, out]). */
const CLASSIFIERS: readonly [weight: string, bias: string, classAxis: number][] = [
  ['classifier.weight', 'classifier.bias', 0],
  ['classifier.1.weight', 'classifier.1.bias', 0],
  ['predictions.kernel', 'predictions.bias', 1],
];

/**
 * The number of classes a state_dict's classifier was trained for, in any naming effnet reads; undefined without
 * one. A mis-shaped weight does not hide a well-shaped bias: the bias then says it, so that a mismatch report names
 * the weight as the odd one out.
 */
export function classifierWidth(tensors: TensorMap): number | undefined {
  for (const [weight, bias, axis] of CLASSIFIERS) {
    const w = tensors.get(weight);
    if (w && w.shape.length === 2) return w.shape[axis];
    const b = tensors.get(bias);
    if (b && b.shape.length === 1) return b.shape[0];
    if (w && w.shape.length > axis) return w.shape[axis];
  }
  return undefined;
}
