import { analyzeGraph, buildEfficientNet, specFor, VARIANTS } from '@effnet/core';
import { defineCommand } from '../args.js';
import { formatTable, humanCount } from '../table.js';
import { VARIANT_COUNTS } from './variant-counts.js';

export interface VariantSummary {
  variant: string;
  arch: string;
  family: string;
  resolution: number;
  params: number;
  macs: number;
}

const countsOf = (name: string): readonly [number, number] => {
  const a = analyzeGraph(buildEfficientNet(specFor(name)));
  return [a.params, a.macs];
};

const summary = (v: (typeof VARIANTS)[number], [params, macs]: readonly [number, number]): VariantSummary => ({ variant: v.name, arch: v.arch, family: v.family, resolution: v.resolution, params, macs });

/** Every variant with its counts computed from its graph: what VARIANT_COUNTS records (variants.test.ts keeps them equal). */
export function computeVariantSummaries(): VariantSummary[] {
  return VARIANTS.map((v) => summary(v, countsOf(v.name)));
}

/** Every variant with its parameters and MACs (the recorded counts; computed for a variant added since). */
export function variantSummaries(): VariantSummary[] {
  return VARIANTS.map((v) => summary(v, VARIANT_COUNTS[v.name] ?? countsOf(v.name)));
}

export const variantsCommand = defineCommand({
  name: 'variants',
  summary: 'every named variant with its resolution, parameters and MACs',
  usage: 'effnet variants [--json]',
  options: { json: { type: 'boolean', description: 'print JSON instead of a table' } },
  examples: ['effnet variants', 'effnet variants --json'],
  notes: ['Any compound-scaled size also has a name: efficientnet_phi-3, tf_efficientnet_phi1.5 (see effnet info --phi).'],
  async run({ values }, io) {
    const rows = variantSummaries();
    if (values.json) io.out(JSON.stringify(rows, null, 2));
    else
      io.out(
        formatTable(
          ['variant', 'arch', 'conventions', 'resolution', 'params', 'MACs'],
          rows.map((r) => [r.variant, r.arch, r.family === 'tf' ? 'tf (SAME, eps 1e-3)' : 'pytorch', r.resolution, humanCount(r.params), humanCount(r.macs)]),
        ),
      );
    return 0;
  },
});
