/**
 * The four block layouts, as timm names them (`_decode_block_str`: ds, ir, cn, er), and the parts of each in order.
 * One table, read by the builder (which nodes a block has), by the torchvision name table (torchvision numbers a
 * block's sub-modules in this order) and by the Keras converter (which names each part by its op).
 */
import type { BlockSpec } from './blocks.js';

/** ds: MBConv without expansion (DepthwiseSeparable); ir: MBConv (InvertedResidual); cn: a single kxk conv (ConvBnAct); er: fused MBConv (EdgeResidual). */
export type BlockLayout = 'ds' | 'ir' | 'cn' | 'er';
export const BLOCK_LAYOUT_NAMES = ['ds', 'ir', 'cn', 'er'] as const satisfies readonly BlockLayout[];

/**
 * What a conv part does: `expand` 1x1 to the mid width (activation); `depthwise` kxk per channel, the block's stride
 * (activation); `fused` kxk to the mid width, or to the output for a single-conv block, the block's stride
 * (activation); `project` 1x1 to the output width (no activation).
 */
export type BlockOp = 'expand' | 'depthwise' | 'fused' | 'project';

/** A conv followed by its BatchNorm, with timm's module names. */
export interface ConvPart {
  op: BlockOp;
  conv: string;
  bn: string;
}

/** `se`: squeeze-excite (`se.conv_reduce`, `se.conv_expand`), present only when the block's seRatio > 0. */
export type BlockPart = ConvPart | 'se';

export const BLOCK_LAYOUTS: Readonly<Record<BlockLayout, readonly BlockPart[]>> = {
  ds: [{ op: 'depthwise', conv: 'conv_dw', bn: 'bn1' }, 'se', { op: 'project', conv: 'conv_pw', bn: 'bn2' }],
  ir: [{ op: 'expand', conv: 'conv_pw', bn: 'bn1' }, { op: 'depthwise', conv: 'conv_dw', bn: 'bn2' }, 'se', { op: 'project', conv: 'conv_pwl', bn: 'bn3' }],
  cn: [{ op: 'fused', conv: 'conv', bn: 'bn1' }],
  er: [{ op: 'fused', conv: 'conv_exp', bn: 'bn1' }, 'se', { op: 'project', conv: 'conv_pwl', bn: 'bn2' }],
};

/** The layout of a block: its type, and whether it expands. */
export function blockLayout(b: Pick<BlockSpec, 'type' | 'expand'>): BlockLayout {
  if (b.type === 'mbconv') return b.expand === 1 ? 'ds' : 'ir';
  return b.expand === 1 ? 'cn' : 'er';
}

/** The parts a block really has, in order: its layout's, without squeeze-excite when it has none. */
export function blockParts(b: Pick<BlockSpec, 'type' | 'expand' | 'seRatio'>): readonly BlockPart[] {
  return BLOCK_LAYOUTS[blockLayout(b)].filter((p) => p !== 'se' || b.seRatio > 0);
}

/** Squeeze-excite's two convs, timm's names. */
export const SE_CONVS = { reduce: 'se.conv_reduce', expand: 'se.conv_expand' } as const;
