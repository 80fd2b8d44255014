import { InvalidSpecError } from './errors.js';
import type { PaddingMode } from './spec.js';

/** Who trained (or named) a set of weights. Each family brings its own padding and BatchNorm conventions. */
export type WeightFamily = 'timm' | 'tf' | 'torchvision' | 'keras' | 'effnet';
export const WEIGHT_FAMILIES: readonly WeightFamily[] = ['timm', 'tf', 'torchvision', 'keras', 'effnet'];

export interface FamilyConventions {
  padding: PaddingMode;
  bnEps: number;
  bnMomentum: number;
}

const PYTORCH: FamilyConventions = { padding: 'symmetric', bnEps: 1e-5, bnMomentum: 0.1 };
const TENSORFLOW: FamilyConventions = { padding: 'same', bnEps: 1e-3, bnMomentum: 0.01 };

/**
 * The conventions weights of `family` were trained with, for the architecture `arch` (a base name such as
 * 'efficientnet', 'efficientnetv2_s') at width multiplier `width`.
 * timm efficientnet_*: symmetric, eps 1e-5. timm tf_*, Keras: TF SAME, eps 1e-3.
 * torchvision: symmetric; eps 1e-5 for B0-B4, 1e-3 for B5-B7 (width >= 1.6) and all of V2.
 */
export function familyConventions(family: WeightFamily, arch: string, width: number): FamilyConventions {
  switch (family) {
    case 'timm':
    case 'effnet':
      return PYTORCH;
    case 'tf':
    case 'keras':
      return TENSORFLOW;
    case 'torchvision':
      // torchvision: b5-b7 use BatchNorm2d(eps=1e-3, momentum=0.01), V2 uses BatchNorm2d(eps=1e-3).
      if (arch.startsWith('efficientnetv2')) return { ...PYTORCH, bnEps: 1e-3 };
      return width >= 1.6 ? { ...PYTORCH, bnEps: 1e-3, bnMomentum: 0.01 } : PYTORCH;
    default:
      throw new InvalidSpecError('family', family, `one of ${WEIGHT_FAMILIES.join(', ')}`);
  }
}
