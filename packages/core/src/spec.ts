import { type Activation, ACTIVATIONS, type BlockSpec, validateBlock } from './blocks.js';
import { InvalidSpecError } from './errors.js';

/** `symmetric`: PyTorch's k//2 on both sides. `same`: TensorFlow's SAME, the smaller half first. */
export type PaddingMode = 'symmetric' | 'same';

export interface StageSpec {
  block: BlockSpec;
  repeats: number;
}

/**
 * A concrete network: every width and repeat count already scaled and rounded. The builder turns this into a Graph;
 * nothing else does.
 */
export interface EfficientNetSpec {
  name: string;
  stemChannels: number;
  stages: StageSpec[];
  headChannels: number;
  act: Activation;
  padding: PaddingMode;
  bnEps: number;
  /** PyTorch convention: new = (1 - momentum) * old + momentum * batch. TF's 0.99 is 0.01 here. */
  bnMomentum: number;
  /** Dropout before the classifier. */
  dropout: number;
  /** Stochastic depth at the last block; block i of n gets rate * i / n. */
  dropPathRate: number;
  /** Evaluation resolution. */
  resolution: number;
}

/** Throws InvalidSpecError naming the first field at fault. */
export function validateSpec(spec: EfficientNetSpec): void {
  const posInt = (field: string, v: unknown) => {
    if (!Number.isInteger(v) || (v as number) < 1) throw new InvalidSpecError(field, v, 'a positive integer');
  };
  const rate = (field: string, v: unknown) => {
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new InvalidSpecError(field, v, 'a rate in [0, 1)');
  };
  if (typeof spec.name !== 'string' || !spec.name) throw new InvalidSpecError('spec.name', spec.name, 'a non-empty string');
  posInt('spec.stemChannels', spec.stemChannels);
  posInt('spec.headChannels', spec.headChannels);
  posInt('spec.resolution', spec.resolution);
  if (!Array.isArray(spec.stages) || spec.stages.length === 0) throw new InvalidSpecError('spec.stages', spec.stages, 'at least one stage');
  spec.stages.forEach((st, i) => {
    posInt(`spec.stages[${i}].repeats`, st.repeats);
    validateBlock(st.block, `spec.stages[${i}].block`);
  });
  if (!ACTIVATIONS.includes(spec.act)) throw new InvalidSpecError('spec.act', spec.act, `one of ${ACTIVATIONS.join(', ')}`);
  if (spec.padding !== 'symmetric' && spec.padding !== 'same') throw new InvalidSpecError('spec.padding', spec.padding, "'symmetric' or 'same'");
  if (!(spec.bnEps > 0 && spec.bnEps < 1)) throw new InvalidSpecError('spec.bnEps', spec.bnEps, 'a small positive number such as 1e-5 or 1e-3');
  if (!(spec.bnMomentum > 0 && spec.bnMomentum <= 1)) throw new InvalidSpecError('spec.bnMomentum', spec.bnMomentum, 'a number in (0, 1], PyTorch convention (0.1, or 0.01 for TF)');
  rate('spec.dropout', spec.dropout);
  rate('spec.dropPathRate', spec.dropPathRate);
}
