import type { BlockSpec } from './blocks.js';
import { InvalidSpecError } from './errors.js';
import type { Endpoint, Graph, Padding } from './graph.js';
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

type BnAct = (bnName: string, input: string, channels: number, act: 'silu' | 'relu' | 'relu6' | 'gelu' | 'hardSwish' | null) => string;

function bnActFor(g: GraphBuilder, spec: EfficientNetSpec): BnAct {
  return (bnName, input, channels, act) => {
    const y = g.batchNorm(bnName, input, channels, spec.bnEps, spec.bnMomentum);
    return act ? g.activation(`${bnName}.act`, y, act) : y;
  };
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
export function appendEfficientNetTrunk(g: GraphBuilder, spec: EfficientNetSpec, input: string, inChannels: number, prefix = ''): Trunk {
  validateSpec(spec);
  const padding: Padding = { mode: spec.padding };
  const bnAct = bnActFor(g, spec);
  let x = g.conv(`${prefix}conv_stem`, input, { inChannels, outChannels: spec.stemChannels, kernel: 3, stride: 2, padding });
  x = bnAct(`${prefix}bn1`, x, spec.stemChannels, spec.act);

  const placed: PlacedBlock[] = [];
  let c = spec.stemChannels;
  spec.stages.forEach((stage, si) => {
    for (let j = 0; j < stage.repeats; j++) {
      const stride = j === 0 ? stage.block.stride : 1;
      placed.push({ block: stage.block, prefix: `${prefix}blocks.${si}.${j}`, inChannels: c, stride });
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

function squeezeExcite(g: GraphBuilder, prefix: string, x: string, channels: number, reduced: number, act: 'silu' | 'relu' | 'relu6' | 'gelu' | 'hardSwish'): string {
  const p = `${prefix}.se`;
  let s = g.globalAvgPool(`${p}.pool`, x, true);
  s = g.conv(`${p}.conv_reduce`, s, { inChannels: channels, outChannels: reduced, kernel: 1, padding: { mode: 'symmetric' }, bias: true });
  s = g.activation(`${p}.act`, s, act);
  s = g.conv(`${p}.conv_expand`, s, { inChannels: reduced, outChannels: channels, kernel: 1, padding: { mode: 'symmetric' }, bias: true });
  s = g.activation(`${p}.gate`, s, 'sigmoid');
  return g.mul(p, x, s);
}

function buildBlock(g: GraphBuilder, input: string, p: PlacedBlock, dropRate: number, spec: EfficientNetSpec, padding: Padding, bnAct: BnAct): string {
  const { block: b, prefix, inChannels: cin, stride } = p;
  const act = b.act ?? spec.act;
  const se = (x: string, channels: number) =>
    b.seRatio > 0 ? squeezeExcite(g, prefix, x, channels, Math.max(1, Math.floor(cin * b.seRatio)), act) : x;
  let x = input;
  if (b.type === 'mbconv' && b.expand === 1) {
    // timm DepthwiseSeparableConv: conv_dw, bn1, se, conv_pw, bn2.
    x = g.conv(`${prefix}.conv_dw`, x, { inChannels: cin, outChannels: cin, kernel: b.kernel, stride, groups: cin, padding });
    x = bnAct(`${prefix}.bn1`, x, cin, act);
    x = se(x, cin);
    x = g.conv(`${prefix}.conv_pw`, x, { inChannels: cin, outChannels: b.out, kernel: 1, padding });
    x = bnAct(`${prefix}.bn2`, x, b.out, null);
  } else if (b.type === 'mbconv') {
    // timm InvertedResidual: conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3.
    const mid = roundFilters(cin, b.expand);
    x = g.conv(`${prefix}.conv_pw`, x, { inChannels: cin, outChannels: mid, kernel: 1, padding });
    x = bnAct(`${prefix}.bn1`, x, mid, act);
    x = g.conv(`${prefix}.conv_dw`, x, { inChannels: mid, outChannels: mid, kernel: b.kernel, stride, groups: mid, padding });
    x = bnAct(`${prefix}.bn2`, x, mid, act);
    x = se(x, mid);
    x = g.conv(`${prefix}.conv_pwl`, x, { inChannels: mid, outChannels: b.out, kernel: 1, padding });
    x = bnAct(`${prefix}.bn3`, x, b.out, null);
  } else if (b.expand === 1) {
    // timm ConvBnAct: conv, bn1.
    x = g.conv(`${prefix}.conv`, x, { inChannels: cin, outChannels: b.out, kernel: b.kernel, stride, padding });
    x = bnAct(`${prefix}.bn1`, x, b.out, act);
  } else {
    // timm EdgeResidual: conv_exp, bn1, se, conv_pwl, bn2.
    const mid = roundFilters(cin, b.expand);
    x = g.conv(`${prefix}.conv_exp`, x, { inChannels: cin, outChannels: mid, kernel: b.kernel, stride, padding });
    x = bnAct(`${prefix}.bn1`, x, mid, act);
    x = se(x, mid);
    x = g.conv(`${prefix}.conv_pwl`, x, { inChannels: mid, outChannels: b.out, kernel: 1, padding });
    x = bnAct(`${prefix}.bn2`, x, b.out, null);
  }
  if (b.skip && stride === 1 && cin === b.out) {
    if (dropRate > 0) x = g.dropPath(`${prefix}.drop_path`, x, dropRate);
    return g.add(prefix, [x, input]);
  }
  return g.activation(prefix, x, 'identity');
}
