import { analyzeGraph, checkNumber, buildEfficientNet, compound, encodeBlock, type EfficientNetSpec, InvalidSpecError, resolveVariant, specFor } from '@effnet/core';
import { defineCommand } from '../args.js';
import { formatTable, humanCount } from '../table.js';

export interface InfoOptions {
  variant?: string;
  resolution?: number;
  phi?: number;
  json: boolean;
}

export function modelInfo(o: InfoOptions) {
  if (o.resolution !== undefined) checkNumber('resolution', o.resolution, { integer: true, min: 1 });
  if (o.phi !== undefined) checkNumber('phi', o.phi);
  let spec: EfficientNetSpec;
  let scaling: { phi: number; depth: number; width: number } | undefined;
  if (o.phi !== undefined) {
    const base = o.variant ? resolveVariant(o.variant).arch : 'efficientnet';
    const c = compound({ phi: o.phi, base });
    spec = o.resolution !== undefined ? { ...c.spec, resolution: o.resolution } : c.spec;
    scaling = { phi: c.phi, depth: c.depth, width: c.width };
  } else {
    if (!o.variant) throw new InvalidSpecError('variant', o.variant, 'a variant name, or --phi X for a compound-scaled size');
    spec = specFor(o.variant, o.resolution !== undefined ? { resolution: o.resolution } : {});
  }
  const graph = buildEfficientNet(spec);
  const a = analyzeGraph(graph);
  let channels = spec.stemChannels;
  const stages = spec.stages.map((st, i) => {
    const s = { stage: i, block: encodeBlock(st.block, st.repeats), repeats: st.repeats, inChannels: channels, outChannels: st.block.out, stride: st.block.stride };
    channels = st.block.out;
    return s;
  });
  return {
    variant: spec.name,
    ...(scaling ? { scaling } : {}),
    resolution: spec.resolution,
    params: a.params,
    macs: a.macs,
    padding: spec.padding,
    bnEps: spec.bnEps,
    stem: spec.stemChannels,
    head: spec.headChannels,
    stages,
    endpoints: a.endpoints.map((e) => ({ name: e.name, node: e.node, stride: e.stride, channels: e.channels, shape: e.shape })),
  };
}

export function infoText(o: InfoOptions): string {
  const info = modelInfo(o);
  if (o.json) return JSON.stringify(info, null, 2);
  const lines = [
    `${info.variant} at ${info.resolution}x${info.resolution}: ${info.params.toLocaleString('en-US')} params (${humanCount(info.params)}), ${info.macs.toLocaleString('en-US')} MACs (${humanCount(info.macs)})`,
    `padding ${info.padding}, BN eps ${info.bnEps}, stem ${info.stem}, head ${info.head}`,
    '',
    formatTable(['stage', 'block', 'in', 'out', 'stride'], info.stages.map((s) => [s.stage, s.block, s.inChannels, s.outChannels, s.stride])),
    '',
    formatTable(['endpoint', 'node', 'stride', 'channels', 'shape'], info.endpoints.map((e) => [e.name, e.node, e.stride, e.channels, `[${e.shape.join(', ')}]`])),
  ];
  return lines.join('\n');
}

export const infoCommand = defineCommand({
  name: 'info',
  summary: 'stages, endpoints, parameters and MACs of a variant',
  usage: 'effnet info <variant> [--resolution N] [--phi X] [--json]',
  positionals: { name: '<variant>', description: 'a variant name (effnet variants); optional with --phi', max: 1 },
  options: {
    resolution: { type: 'number', integer: true, min: 1, max: 8192, valueName: 'N', description: 'analyse at N x N pixels instead of the variant\'s resolution' },
    phi: { type: 'number', min: -20, max: 20, valueName: 'X', description: "compound-scale the variant's base (B0 by default) by phi; negative: --phi=-1" },
    json: { type: 'boolean', description: 'print JSON instead of tables' },
  },
  examples: ['effnet info efficientnet_b3 --json', 'effnet info --phi=-2 --resolution 128'],
  async run({ values, positionals }, io) {
    io.out(infoText({ variant: positionals[0], resolution: values.resolution, phi: values.phi, json: values.json }));
    return 0;
  },
});
