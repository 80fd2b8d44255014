import { analyzeGraph, buildEfficientNet, specFor, VARIANTS } from '@effnet/core';
import { formatTable, humanCount } from '../table.js';

export interface VariantSummary {
  variant: string;
  arch: string;
  family: string;
  resolution: number;
  params: number;
  macs: number;
}

export function variantSummaries(): VariantSummary[] {
  return VARIANTS.map((v) => {
    const a = analyzeGraph(buildEfficientNet(specFor(v.name)));
    return { variant: v.name, arch: v.arch, family: v.family, resolution: v.resolution, params: a.params, macs: a.macs };
  });
}

export function variantsCommand(opts: { json: boolean }): string {
  const rows = variantSummaries();
  if (opts.json) return JSON.stringify(rows, null, 2);
  return formatTable(
    ['variant', 'arch', 'conventions', 'resolution', 'params', 'MACs'],
    rows.map((r) => [r.variant, r.arch, r.family === 'tf' ? 'tf (SAME, eps 1e-3)' : 'pytorch', r.resolution, humanCount(r.params), humanCount(r.macs)]),
  );
}
