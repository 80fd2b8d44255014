import { InvalidSpecError } from '../errors.js';

/**
 * How a BiFPN node fuses its inputs (effdet's weight methods): `fast` = relu(w_i) / (sum_j relu(w_j) + 1e-4)
 * ("fastattn"), `softmax` = softmax(w) ("attn"), `sum` = plain sum, no weights.
 */
export type FusionMethod = 'fast' | 'softmax' | 'sum';
export const FUSION_METHODS: readonly FusionMethod[] = ['fast', 'softmax', 'sum'];

/**
 * One node of a BiFPN cell: the pyramid level it produces and the ids of the feature maps it fuses. Ids 0 ..
 * numLevels-1 are the cell's inputs (levels minLevel .. maxLevel); each node appends the next id.
 */
export interface FpnNode {
  level: number;
  inputOffsets: number[];
  fusion: FusionMethod;
}

/**
 * The BiFPN topology (Tan et al. 2020, fig. 2d) as generated records, as effdet's and automl's `bifpn_config`:
 * a top-down path from maxLevel-1 to minLevel, each node fusing its level with the level above, then a bottom-up
 * path from minLevel+1 to maxLevel, each node fusing every earlier map of its level with the level below.
 */
export function bifpnNodes(minLevel: number, maxLevel: number, fusion: FusionMethod): FpnNode[] {
  if (!Number.isInteger(minLevel) || !Number.isInteger(maxLevel) || minLevel < 1 || maxLevel <= minLevel)
    throw new InvalidSpecError('levels', { minLevel, maxLevel }, 'integers with 1 <= minLevel < maxLevel');
  if (!FUSION_METHODS.includes(fusion)) throw new InvalidSpecError('fusion', fusion, `one of ${FUSION_METHODS.join(', ')}`);
  const ids = new Map<number, number[]>();
  for (let level = minLevel; level <= maxLevel; level++) ids.set(level, [level - minLevel]);
  const last = (level: number) => ids.get(level)!.at(-1)!;
  let next = maxLevel - minLevel + 1;
  const nodes: FpnNode[] = [];
  for (let level = maxLevel - 1; level >= minLevel; level--) {
    nodes.push({ level, inputOffsets: [last(level), last(level + 1)], fusion });
    ids.get(level)!.push(next++);
  }
  for (let level = minLevel + 1; level <= maxLevel; level++) {
    nodes.push({ level, inputOffsets: [...ids.get(level)!, last(level - 1)], fusion });
    ids.get(level)!.push(next++);
  }
  return nodes;
}
