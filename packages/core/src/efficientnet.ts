import { blockLayout, blockParts, SE_CONVS } from './block-layouts.js';
import type { Activation, BlockSpec } from './blocks.js';
import { InvalidSpecError } from './errors.js';
import { assertNever, type Endpoint, type Graph, type Padding } from './graph.js';
import { GraphBuilder } from './graph-builder.js';
import { roundFilters } from './scaling.js';
import { type EfficientNetSpec, validateSpec } from './spec.js';

export interface BuildOptions {
  /** Classifier outputs, default 1000. */
  numClasses?: number;
  /** true: the output is `logits` [N, numClasses]. false: no pooling/classifier; the output is the head's feature map `features`. Default true. */
  includeTop?: boolean;
  /** Static input size (number or [h, w]), or null for any size. Default: the spec's resolution. */
  inputResolution?: number | [number, number] | null;
  /** Input channels, default 3. */
  inChannels?: number;
}

/** A block in the flattened list, with the input channels and parameter prefix the builder gave it. */
interface PlacedBlock {
  block: BlockSpec;
  prefix: string;
  inChannels: number;
  stride: number;
  /** Dilation of the block's spatial conv (1 unless the trunk is dilated to an output stride). */
  dilation: number;
}

/**
 * Builds the graph of an EfficientNet spec, naming every parameter as timm's state_dict does:
 * conv_stem, bn1, blocks.<stage>.<index>.*, conv_head, bn2, classifier.
 */
export function buildEfficientNet(spec: EfficientNetSpec, options: BuildOptions = {}): Graph {
  validateSpec(spec);
  const { numClasses = 1000, includeTop = true, inChannels = 3 } = options;
  if (includeTop && (!Number.isInteger(numClasses) || numClasses < 1)) throw new InvalidSpecError('numClasses', numClasses, 'a positive integer');
  const res = options.inputResolution === undefined ? spec.resolution : options.inputResolution;
  const [h, w] = res === null ? [null, null] : typeof res === 'number' ? [res, res] : res;
  for (const v of [h, w]) if (v !== null && (!Number.isInteger(v) || v < 1)) throw new InvalidSpecError('inputResolution', res, 'a positive integer, [h, w], or null');

  const g = new GraphBuilder(spec.name, [{ name: 'input', channels: inChannels, height: h, width: w }]);
  const { output, channels, endpoints } = appendEfficientNetTrunk(g, spec, 'input', inChannels);
  const bnAct = bnActFor(g, spec);
  let x = g.conv('conv_head', output, { inChannels: channels, outChannels: spec.headChannels, kernel: 1, padding: { mode: spec.padding } });
  x = bnAct('bn2', x, spec.headChannels, spec.act);
  const metadata = { variant: spec.name, resolution: spec.resolution, padding: spec.padding, bnEps: spec.bnEps };
  if (!includeTop) {
    x = g.activation('features', x, 'identity');
    return g.build([x], endpoints, metadata);
  }
  x = g.globalAvgPool('global_pool', x, false);
  x = g.dropout('head_drop', x, spec.dropout);
  x = g.dense('logits', x, spec.headChannels, numClasses, true, 'classifier');
  return g.build([x], endpoints, { ...metadata, numClasses });
}

type BnAct = (bnName: string, input: string, channels: number, act: Activation | null) => string;

function bnActFor(g: GraphBuilder, spec: EfficientNetSpec): BnAct {
  return (bnName, input, channels, act) => {
    const y = g.batchNorm(bnName, input, channels, spec.bnEps, spec.bnMomentum);
    return act ? g.activation(`${bnName}.act`, y, act) : y;
  };
}

export interface TrunkOptions {
  /**
   * Largest reduction of the trunk, default 32. 16 or 8: the stages that would reduce further keep stride 1 and
   * dilate their spatial convs by the reduction they skip (smp's make_dilated, DeepLab's atrous encoder).
   */
  outputStride?: number;
}

export interface Trunk {
  /** The last block's output. */
  output: string;
  channels: number;
  /** The last feature map at each stride (2, 4, ..., 32), named `stride<N>`. */
  endpoints: Endpoint[];
}

/**
 * Appends an EfficientNet's stem and blocks (no head) to a builder, every node and parameter name prefixed with
 * `prefix` (a detector's backbone is `backbone.conv_stem`, `backbone.blocks.0.0.conv_dw`, ... as in effdet).
 */
export function appendEfficientNetTrunk(g: GraphBuilder, spec: EfficientNetSpec, input: string, inChannels: number, prefix = '', options: TrunkOptions = {}): Trunk {
  validateSpec(spec);
  const outputStride = options.outputStride ?? 32;
  if (![8, 16, 32].includes(outputStride)) throw new InvalidSpecError('outputStride', outputStride, '8, 16 or 32');
  const padding: Padding = { mode: spec.padding };
  const bnAct = bnActFor(g, spec);
  let x = g.conv(`${prefix}conv_stem`, input, { inChannels, outChannels: spec.stemChannels, kernel: 3, stride: 2, padding });
  x = bnAct(`${prefix}bn1`, x, spec.stemChannels, spec.act);

  const placed: PlacedBlock[] = [];
  let c = spec.stemChannels;
  // Past the output stride, a stage keeps the resolution and dilates its convs instead (smp's make_dilated).
  let reached = 2;
  let dilation = 1;
  spec.stages.forEach((stage, si) => {
    if (stage.block.stride > 1 && reached * stage.block.stride > outputStride) dilation *= stage.block.stride;
    for (let j = 0; j < stage.repeats; j++) {
      let stride = j === 0 ? stage.block.stride : 1;
      if (dilation > 1) stride = 1;
      reached *= stride;
      placed.push({ block: stage.block, prefix: `${prefix}blocks.${si}.${j}`, inChannels: c, stride, dilation });
      c = stage.block.out;
    }
  });

  const endpoints: Endpoint[] = [];
  let reduction = 2;
  placed.forEach((p, i) => {
    const rate = p.block.dropPath ?? (spec.dropPathRate * i) / placed.length;
    x = buildBlock(g, x, p, rate, spec, padding, bnAct);
    reduction *= p.stride;
    const next = placed[i + 1];
    if (!next || next.stride > 1) {
      const existing = endpoints.findIndex((e) => e.stride === reduction);
      const e = { name: `stride${reduction}`, node: x, stride: reduction, channels: p.block.out };
      if (existing >= 0) endpoints[existing] = e;
      else endpoints.push(e);
    }
  });
  return { output: x, channels: c, endpoints };
}

function squeezeExcite(g: GraphBuilder, prefix: string, x: string, channels: number, reduced: number, act: Activation): string {
  const p = `${prefix}.se`;
  let s = g.globalAvgPool(`${p}.pool`, x, true);
  s = g.conv(`${prefix}.${SE_CONVS.reduce}`, s, { inChannels: channels, outChannels: reduced, kernel: 1, padding: { mode: 'symmetric' }, bias: true });
  s = g.activation(`${p}.act`, s, act);
  s = g.conv(`${prefix}.${SE_CONVS.expand}`, s, { inChannels: reduced, outChannels: channels, kernel: 1, padding: { mode: 'symmetric' }, bias: true });
  s = g.activation(`${p}.gate`, s, 'sigmoid');
  return g.mul(p, x, s);
}

/** One block, part by part as its layout lists them (core/src/block-layouts.ts), with timm's module names. */
function buildBlock(g: GraphBuilder, input: string, p: PlacedBlock, dropRate: number, spec: EfficientNetSpec, padding: Padding, bnAct: BnAct): string {
  const { block: b, prefix, inChannels: cin, stride, dilation } = p;
  const act = b.act ?? spec.act;
  const layout = blockLayout(b);
  const mid = roundFilters(cin, b.expand);
  let x = input;
  let c = cin;
  for (const part of blockParts(b)) {
    if (part === 'se') {
      x = squeezeExcite(g, prefix, x, c, Math.max(1, Math.floor(cin * b.seRatio)), act);
      continue;
    }
    const name = `${prefix}.${part.conv}`;
    switch (part.op) {
      case 'expand':
        x = g.conv(name, x, { inChannels: c, outChannels: mid, kernel: 1, padding });
        c = mid;
        break;
      case 'depthwise':
        x = g.conv(name, x, { inChannels: c, outChannels: c, kernel: b.kernel, stride, dilation, groups: c, padding });
        break;
      case 'fused': {
        const out = layout === 'cn' ? b.out : mid;
        x = g.conv(name, x, { inChannels: c, outChannels: out, kernel: b.kernel, stride, dilation, padding });
        c = out;
        break;
      }
      case 'project':
        x = g.conv(name, x, { inChannels: c, outChannels: b.out, kernel: 1, padding });
        c = b.out;
        break;
      default:
        assertNever(part.op, 'block op');
    }
    x = bnAct(`${prefix}.${part.bn}`, x, c, part.op === 'project' ? null : act);
  }
  if (b.skip && stride === 1 && cin === b.out) {
    if (dropRate > 0) x = g.dropPath(`${prefix}.drop_path`, x, dropRate);
    return g.add(prefix, [x, input]);
  }
  return g.activation(prefix, x, 'identity');
}
