import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { analyzeGraph, buildEfficientNet, compound, InvalidSpecError, roundFilters, roundRepeats, searchCoefficients, specFor } from './index.js';

describe('roundFilters', () => {
  test.prop([fc.integer({ min: 1, max: 2048 }), fc.double({ min: 0.1, max: 8, noNaN: true }), fc.constantFrom(4, 8, 16)])(
    'is a multiple of the divisor, at least the divisor, never below 90% and within one divisor of the scaled value',
    (c, w, d) => {
      const r = roundFilters(c, w, d);
      const v = c * w;
      expect(r % d).toBe(0);
      expect(r).toBeGreaterThanOrEqual(d);
      expect(r).toBeGreaterThanOrEqual(0.9 * v);
      expect(Math.abs(r - v)).toBeLessThanOrEqual(Math.max(d, d - v));
    },
  );
  test.prop([fc.integer({ min: 1, max: 2048 }), fc.double({ min: 0.1, max: 4, noNaN: true }), fc.double({ min: 0.1, max: 4, noNaN: true })])(
    'is monotone in the width multiplier',
    (c, a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      expect(roundFilters(c, lo)).toBeLessThanOrEqual(roundFilters(c, hi));
    },
  );
  it('matches the reference values', () => {
    expect(roundFilters(32, 1.1)).toBe(32);
    expect(roundFilters(40, 1.1)).toBe(48);
    expect(roundFilters(1280, 1.1)).toBe(1408);
    expect(roundFilters(16, 1.2)).toBe(24);
    expect(roundFilters(112, 1.4)).toBe(160);
    // V2-B* disable the 90% floor (timm round_limit=0): 16 * 1.1 = 17.6 -> 16.
    expect(roundFilters(16, 1.1, 8, 0)).toBe(16);
    expect(roundFilters(13, 1, 8)).toBe(16);
  });
});

describe('roundRepeats', () => {
  test.prop([fc.integer({ min: 1, max: 100 }), fc.double({ min: 0.05, max: 10, noNaN: true })])('is ceil and never below 1', (r, d) => {
    const n = roundRepeats(r, d);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeGreaterThanOrEqual(r * d);
    expect(n - r * d).toBeLessThan(1);
  });
});

describe('variants', () => {
  it('lite fixes stem, head and first/last repeats', () => {
    const s = specFor('efficientnet_lite4');
    expect(s.stemChannels).toBe(32);
    expect(s.headChannels).toBe(1280);
    expect(s.stages[0]!.repeats).toBe(1);
    expect(s.stages[6]!.repeats).toBe(1);
    expect(s.stages[1]!.repeats).toBe(4);
    expect(s.act).toBe('relu6');
    expect(s.stages.every((st) => st.block.seRatio === 0)).toBe(true);
  });
  it('accepts torchvision and automl spellings', () => {
    expect(specFor('efficientnet_v2_s').name).toBe('efficientnetv2_s');
    expect(specFor('efficientnet-b3').name).toBe('efficientnet_b3');
  });
  it('tf_ variants carry TensorFlow conventions', () => {
    expect(specFor('tf_efficientnet_b0')).toMatchObject({ padding: 'same', bnEps: 1e-3 });
    expect(specFor('efficientnet_b0')).toMatchObject({ padding: 'symmetric', bnEps: 1e-5 });
    expect(specFor('efficientnet_b5', { family: 'torchvision' }).bnEps).toBe(1e-3);
    expect(specFor('efficientnet_b4', { family: 'torchvision' }).bnEps).toBe(1e-5);
  });
  it('unknown names list the known ones', () => {
    expect(() => specFor('efficientnet_b9')).toThrow(/"efficientnet_b9" is not a known variant \(known: efficientnet_b0, .*efficientnetv2_s/);
  });
});

describe('compound scaling', () => {
  const macs = (phi: number) => {
    const { spec, resolution } = compound({ phi });
    return analyzeGraph(buildEfficientNet(spec, { inputResolution: resolution })).macs;
  };
  const b0 = macs(0);

  it('phi = 0 is B0', () => {
    const { spec, resolution } = compound({ phi: 0 });
    expect(resolution).toBe(224);
    expect(spec.stages).toEqual(specFor('efficientnet_b0').stages);
  });

  test.prop([fc.double({ min: -3, max: 4, noNaN: true })], { numRuns: 25 })('MACs grow by about (alpha*beta^2*gamma^2)^phi', (phi) => {
    const ratio = macs(phi) / b0;
    const expected = (1.2 * 1.1 ** 2 * 1.15 ** 2) ** phi;
    // Channel rounding to multiples of 8 and ceil on repeats make the real growth a step function above the ideal:
    // every stage gains a block as soon as alpha^phi > 1 (so phi = 0.05 is already 1.7x the ideal), and no stage
    // drops below one block for negative phi (phi = -3 is 1.96x). timm and torchvision round the same way.
    expect(ratio / expected).toBeLessThan(2.1);
    expect(ratio / expected).toBeGreaterThan(0.9);
  });

  test.prop([fc.double({ min: -4, max: 6, noNaN: true }), fc.double({ min: -4, max: 6, noNaN: true })], { numRuns: 25 })(
    'is monotone in phi',
    (a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const x = compound({ phi: lo });
      const y = compound({ phi: hi });
      expect(x.resolution).toBeLessThanOrEqual(y.resolution);
      expect(x.spec.stages.map((s) => s.repeats).every((r, i) => r <= y.spec.stages[i]!.repeats)).toBe(true);
      expect(x.spec.headChannels).toBeLessThanOrEqual(y.spec.headChannels);
    },
  );

  it('rejects bad coefficients by name', () => {
    expect(() => compound({ phi: Number.NaN })).toThrow(InvalidSpecError);
    expect(() => compound({ phi: 1, alpha: 0.5 })).toThrow(/alpha: 0.5/);
  });
});

describe('searchCoefficients', () => {
  it('returns the ranked grid under the FLOPs constraint', async () => {
    // Score: prefer candidates closest to the paper's (1.2, 1.1, 1.15).
    const ranked = await searchCoefficients({ score: ({ alpha, beta, gamma }) => -Math.hypot(alpha - 1.2, beta - 1.1, gamma - 1.15) });
    expect(ranked.length).toBeGreaterThan(10);
    expect(ranked[0]).toMatchObject({ alpha: 1.2, beta: 1.1, gamma: 1.15 });
    for (const r of ranked) expect(Math.abs(r.flopsFactor - 2)).toBeLessThanOrEqual(0.1 + 1e-9);
    for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1]!.score).toBeGreaterThanOrEqual(ranked[i]!.score);
  });
  it('supports async scoring with a FLOPs objective', async () => {
    const ranked = await searchCoefficients({
      step: 0.1,
      score: async ({ spec, resolution }) => -analyzeGraph(buildEfficientNet(spec, { inputResolution: resolution })).macs,
    });
    expect(ranked.length).toBeGreaterThan(0);
    expect(ranked[0]!.score).toBeGreaterThanOrEqual(ranked.at(-1)!.score);
  });
});

describe('compound-scaled names', () => {
  test.prop([fc.integer({ min: -60, max: 60 }).map((x) => x / 10)], { numRuns: 30 })('efficientnet_phi<phi> names the compound() network', (phi) => {
    const c = compound({ phi });
    const s = specFor(`efficientnet_phi${phi}`);
    expect(s.stages).toEqual(c.spec.stages);
    expect([s.stemChannels, s.headChannels, s.resolution, s.dropout]).toEqual([c.spec.stemChannels, c.spec.headChannels, c.resolution, c.spec.dropout]);
    expect(specFor(`tf_efficientnet_phi${phi}`).padding).toBe('same');
  });
});
