import { BlockStringError, InvalidSpecError } from './errors.js';

/** Activation functions a block or head may use. */
export type Activation = 'silu' | 'relu' | 'relu6' | 'gelu' | 'hardSwish';
export const ACTIVATIONS: readonly Activation[] = ['silu', 'relu', 'relu6', 'gelu', 'hardSwish'];

/**
 * Inverted residual (MBConv): optional 1x1 expansion, kxk depthwise, squeeze-excite, 1x1 projection.
 * `expand === 1` drops the expansion conv (timm's DepthwiseSeparable, torchvision's MBConv with no expand layer).
 */
export interface MBConvBlock {
  type: 'mbconv';
  kernel: number;
  stride: number;
  expand: number;
  out: number;
  /** Squeeze-excite width as a fraction of the block's input channels; 0 = no SE. */
  seRatio: number;
  /** Overrides the network's activation for this block. */
  act?: Activation;
  /** Residual when stride 1 and in == out. false = never (timm's `noskip`). */
  skip: boolean;
  /** Stochastic depth rate of this block; set by the builder from the network's drop-path rate. */
  dropPath?: number;
}

/**
 * Fused MBConv (EfficientNetV2): kxk expansion conv replaces expansion + depthwise, then optional SE and a 1x1
 * projection. `expand === 1` is a single kxk conv (timm's ConvBnAct, torchvision's FusedMBConv with expand 1).
 */
export interface FusedMBConvBlock {
  type: 'fused';
  kernel: number;
  stride: number;
  expand: number;
  out: number;
  seRatio: number;
  act?: Activation;
  skip: boolean;
  dropPath?: number;
}

export type BlockSpec = MBConvBlock | FusedMBConvBlock;

const PREFIX: Record<BlockSpec['type'], string> = { mbconv: 'ir', fused: 'fir' };

/** Encoding of activation overrides, as timm's `_n<act>` suffix. */
const ACT_CODE: Record<Activation, string> = { silu: 'sw', relu: 're', relu6: 'r6', gelu: 'ge', hardSwish: 'hs' };
const CODE_ACT = Object.fromEntries(Object.entries(ACT_CODE).map(([a, c]) => [c, a as Activation])) as Record<string, Activation>;

/** Shortest decimal that reads back as the same number (so the codec round-trips). */
function num(x: number): string {
  return String(x);
}

/**
 * Encodes one block (and its repeat count) as a compact string in the style of timm/automl:
 * `ir_r2_k3_s2_e6_c24_se0.25`, `fir_r4_k3_s2_e4_c48`. Optional tokens: `_nre` activation, `_noskip`, `_dp0.1`.
 */
export function encodeBlock(block: BlockSpec, repeats = 1): string {
  validateBlock(block);
  if (!Number.isInteger(repeats) || repeats < 1) throw new InvalidSpecError('repeats', repeats, 'a positive integer');
  const parts = [PREFIX[block.type], `r${repeats}`, `k${block.kernel}`, `s${block.stride}`, `e${num(block.expand)}`, `c${block.out}`];
  if (block.seRatio > 0) parts.push(`se${num(block.seRatio)}`);
  if (block.act) parts.push(`n${ACT_CODE[block.act]}`);
  if (!block.skip) parts.push('noskip');
  if (block.dropPath !== undefined) parts.push(`dp${num(block.dropPath)}`);
  return parts.join('_');
}

/**
 * Decodes a block string. Accepts our prefixes (`ir`, `fir`) and timm's (`ds` = MBConv without expansion,
 * `er` = fused, `cn` = single conv, i.e. fused with expand 1). timm's `_skip` on `cn` blocks is the default here.
 */
export function decodeBlock(s: string): { block: BlockSpec; repeats: number } {
  const tokens = s.split('_');
  const prefix = tokens.shift();
  let type: BlockSpec['type'];
  let defaultExpand: number | undefined;
  switch (prefix) {
    case 'ir':
      type = 'mbconv';
      break;
    case 'ds':
      type = 'mbconv';
      defaultExpand = 1;
      break;
    case 'fir':
    case 'er':
      type = 'fused';
      break;
    case 'cn':
      type = 'fused';
      defaultExpand = 1;
      break;
    default:
      throw new BlockStringError(s, `unknown block type "${prefix}" (expected ir, fir, ds, er or cn)`);
  }
  const fields: Record<string, number> = {};
  let act: Activation | undefined;
  let skip = true;
  let dropPath: number | undefined;
  const seen = new Set<string>();
  for (const tok of tokens) {
    if (tok === 'noskip') {
      skip = false;
      continue;
    }
    if (tok === 'skip') continue;
    const m = /^(se|dp|r|k|s|e|c|n)(.+)$/.exec(tok);
    if (!m) throw new BlockStringError(s, `unknown token "${tok}"`);
    const key = m[1]!;
    const val = m[2]!;
    if (seen.has(key)) throw new BlockStringError(s, `token "${key}" given twice`);
    seen.add(key);
    if (key === 'n') {
      const a = CODE_ACT[val];
      if (!a) throw new BlockStringError(s, `unknown activation code "${val}" (known: ${Object.keys(CODE_ACT).join(', ')})`);
      act = a;
      continue;
    }
    if (!/^\d+(\.\d+)?(e-?\d+)?$/.test(val)) throw new BlockStringError(s, `token "${tok}" needs a number after "${key}"`);
    const v = Number(val);
    if (key === 'dp') dropPath = v;
    else fields[key] = v;
  }
  for (const req of ['r', 'k', 's', 'c'] as const) {
    if (fields[req] === undefined) throw new BlockStringError(s, `missing "${req}" token`);
  }
  const expand = fields.e ?? defaultExpand;
  if (expand === undefined) throw new BlockStringError(s, 'missing "e" token (expansion ratio)');
  const block: BlockSpec = {
    type,
    kernel: fields.k!,
    stride: fields.s!,
    expand,
    out: fields.c!,
    seRatio: fields.se ?? 0,
    skip,
  };
  if (act) block.act = act;
  if (dropPath !== undefined) block.dropPath = dropPath;
  try {
    validateBlock(block);
  } catch (e) {
    throw new BlockStringError(s, (e as Error).message);
  }
  return { block, repeats: fields.r! };
}

/** Throws InvalidSpecError naming the first field that cannot work. */
export function validateBlock(b: BlockSpec, where = 'block'): void {
  if (b.type !== 'mbconv' && b.type !== 'fused') throw new InvalidSpecError(`${where}.type`, (b as { type: unknown }).type, "'mbconv' or 'fused'");
  const posInt = (f: 'kernel' | 'stride' | 'out') => {
    if (!Number.isInteger(b[f]) || b[f] < 1) throw new InvalidSpecError(`${where}.${f}`, b[f], 'a positive integer');
  };
  posInt('kernel');
  posInt('stride');
  posInt('out');
  if (b.kernel % 2 !== 1) throw new InvalidSpecError(`${where}.kernel`, b.kernel, 'an odd kernel size');
  if (!(b.expand >= 1) || !Number.isFinite(b.expand)) throw new InvalidSpecError(`${where}.expand`, b.expand, 'a finite number >= 1');
  if (!(b.seRatio >= 0 && b.seRatio <= 1)) throw new InvalidSpecError(`${where}.seRatio`, b.seRatio, 'a number in [0, 1]');
  if (b.type === 'fused' && b.expand === 1 && b.seRatio > 0)
    throw new InvalidSpecError(`${where}.seRatio`, b.seRatio, 'a fused block with expand 1 is a single conv and has no squeeze-excite; use 0');
  if (b.act !== undefined && !ACTIVATIONS.includes(b.act)) throw new InvalidSpecError(`${where}.act`, b.act, `one of ${ACTIVATIONS.join(', ')}`);
  if (typeof b.skip !== 'boolean') throw new InvalidSpecError(`${where}.skip`, b.skip, 'true or false');
  if (b.dropPath !== undefined && !(b.dropPath >= 0 && b.dropPath < 1))
    throw new InvalidSpecError(`${where}.dropPath`, b.dropPath, 'a rate in [0, 1)');
}
