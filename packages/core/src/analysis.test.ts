import { describe, expect, it } from 'vitest';
import { analyzeGraph, buildEfficientNet, countParameters, specFor } from './index.js';

// torchvision's parameter counts and conv+linear MACs (thop-style, one image) at each model's own resolution,
// and the paper's FLOPs (Tan & Le 2019, table 2). See ../shared/reference/FACTS.md.
const V1: [string, number, number, number, number][] = [
  ['efficientnet_b0', 224, 5_288_548, 385_814_752, 0.39e9],
  ['efficientnet_b1', 240, 7_794_184, 686_802_832, 0.7e9],
  ['efficientnet_b2', 260, 9_109_994, 993_561_872, 1.0e9],
  ['efficientnet_b3', 300, 12_233_232, 1_827_141_392, 1.8e9],
  ['efficientnet_b4', 380, 19_341_616, 4_393_771_024, 4.2e9],
  ['efficientnet_b5', 456, 30_389_784, 10_266_384_752, 9.9e9],
  ['efficientnet_b6', 528, 43_040_704, 19_067_593_536, 19e9],
  ['efficientnet_b7', 600, 66_347_960, 37_745_884_192, 37e9],
];
const V2: [string, number, number, number][] = [
  ['efficientnet_v2_s', 384, 21_458_488, 8_365_617_152],
  ['efficientnet_v2_m', 480, 54_139_356, 24_582_460_384],
  ['efficientnet_v2_l', 480, 118_515_272, 56_079_699_008],
];

describe('analysis against torchvision and the paper', () => {
  it.each(V1)('%s: params, MACs and paper FLOPs', (name, res, params, macs, paperFlops) => {
    const a = analyzeGraph(buildEfficientNet(specFor(name, { family: 'torchvision' })));
    expect(a.height).toBe(res);
    expect(a.params).toBe(params);
    expect(a.macs).toBe(macs);
    expect(Math.abs(a.macs - paperFlops) / paperFlops).toBeLessThan(0.05);
  });
  it.each(V2)('%s: params and MACs', (name, res, params, macs) => {
    const a = analyzeGraph(buildEfficientNet(specFor(name, { family: 'torchvision' })));
    expect(a.height).toBe(res);
    expect(countParameters(buildEfficientNet(specFor(name)))).toBe(params);
    expect(a.params).toBe(params);
    expect(a.macs).toBe(macs);
  });
});
