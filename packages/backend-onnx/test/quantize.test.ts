import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, float32Tensor, randomWeights, seededNormal, specFor } from '@effnet/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activationQuantParams, calibrateInt8, compileToOnnx, entropyBin, openSession, ort, percentileBin, quantizeWeightPerChannel, RangeCollector } from '../src/index.js';

const floats = fc.float({ min: -1000, max: 1000, noNaN: true, noDefaultInfinity: true });

describe('int8 quantization rules', () => {
  it('an activation range always holds 0 exactly, and every value of the range is within a step of a level', () => {
    fc.assert(
      fc.property(floats, floats, (a, b) => {
        const [min, max] = a < b ? [a, b] : [b, a];
        for (const type of ['uint8', 'int8'] as const) {
          const { scale, zeroPoint } = activationQuantParams(min, max, type);
          const [lo, hi] = type === 'uint8' ? [0, 255] : [-128, 127];
          expect(zeroPoint).toBeGreaterThanOrEqual(lo);
          expect(zeroPoint).toBeLessThanOrEqual(hi);
          expect(scale).toBeGreaterThan(0);
          for (const v of [min, max, 0]) {
            const q = Math.max(lo, Math.min(hi, Math.round(v / scale) + zeroPoint));
            expect(Math.abs((q - zeroPoint) * scale - v)).toBeLessThanOrEqual(scale * 0.5 + 1e-6 * Math.abs(v) + 1e-9);
          }
        }
      }),
    );
  });

  it('per-channel int8 weights are within half a step of the float weights, and the largest |w| maps to 127', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 12 }), fc.integer(), (channels, per, seed) => {
        const n = seededNormal(seed);
        const w = Float32Array.from({ length: channels * per }, () => n());
        const { q, scales } = quantizeWeightPerChannel(w, channels);
        for (let c = 0; c < channels; c++) {
          let peak = 0;
          for (let i = c * per; i < (c + 1) * per; i++) {
            expect(Math.abs(q[i]! * scales[c]! - w[i]!)).toBeLessThanOrEqual(scales[c]! / 2 + 1e-6);
            peak = Math.max(peak, Math.abs(q[i]!));
          }
          expect(peak).toBe(127);
        }
      }),
    );
  });

  it('percentile and entropy ranges lie inside the min/max range and hold the bulk of the values', () => {
    fc.assert(
      fc.property(fc.integer(), fc.double({ min: 1, max: 50, noNaN: true }), (seed, outlier) => {
        const n = seededNormal(seed);
        const data = Float32Array.from({ length: 5000 }, () => n());
        data[0] = outlier * 10;
        const by = (method: 'minmax' | 'percentile' | 'entropy') => {
          const c = new RangeCollector(method, 99.9);
          for (let p = 0; p < c.passes; p++) c.observe('t', data, p);
          return c.ranges().t!;
        };
        const [mm, pc, en] = [by('minmax'), by('percentile'), by('entropy')];
        expect(mm[0]).toBe(Math.min(...data));
        expect(mm[1]).toBe(Math.max(...data));
        for (const r of [pc, en]) {
          expect(r[0]).toBeGreaterThanOrEqual(mm[0]);
          expect(r[1]).toBeLessThanOrEqual(mm[1]);
          expect(r[1]).toBeGreaterThan(2);
        }
        expect(pc[1]).toBeLessThan(mm[1]);
      }),
      { numRuns: 20 },
    );
    const h = new Float64Array(2048).fill(1);
    expect(percentileBin(h, 50)).toBe(1024);
    expect(entropyBin(h, 128)).toBeGreaterThanOrEqual(128);
  });
});

describe('int8 export', () => {
  it('ONNX Runtime runs the convolutions on its int8 kernels (profiled), and the outputs follow the float32 model', async () => {
    const graph = buildEfficientNet(specFor('efficientnet_phi-4'), { numClasses: 10, inputResolution: 32 });
    const weights = randomWeights(graph, 5);
    const n = seededNormal(11);
    const batch = () => float32Tensor([4, 3, 32, 32], Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => n()));
    const calibration = [batch(), batch()];
    const ranges = await calibrateInt8(graph, weights, () => calibration);
    const fp32 = compileToOnnx(graph, weights).model;
    const int8 = compileToOnnx(graph, weights, { int8: { ranges } });
    expect(int8.model.length).toBeLessThan(fp32.length / 2);
    const { Tensor } = await ort();
    const x = calibration[0]!;
    const feeds = { input: new Tensor('float32', x.data as Float32Array, x.shape) };
    const dir = mkdtempSync(join(tmpdir(), 'effnet-int8-'));
    const prefix = join(dir, 'profile');
    const a = (await openSession(fp32, { device: 'cpu' })).session;
    const b = (await openSession(int8.model, { device: 'cpu' }, undefined, { enableProfiling: true, profileFilePrefix: prefix })).session;
    try {
      const ya = (await a.run(feeds)).logits!.data as Float32Array;
      const yb = (await b.run(feeds)).logits!.data as Float32Array;
      const range = Math.max(...ya) - Math.min(...ya);
      let err = 0;
      for (let i = 0; i < ya.length; i++) err = Math.max(err, Math.abs(ya[i]! - yb[i]!));
      expect(err).toBeLessThan(0.25 * range);
      b.endProfiling();
      const file = join(dir, readdirSync(dir).find((f) => f.startsWith('profile'))!);
      const ops = new Set((JSON.parse(readFileSync(file, 'utf8')) as { cat: string; args?: { op_name?: string } }[]).filter((e) => e.cat === 'Node').map((e) => e.args?.op_name));
      expect(ops).toContain('QLinearConv');
      expect(ops).not.toContain('Conv');
      expect(ops).not.toContain('FusedConv');
    } finally {
      await Promise.all([a.release(), b.release()]);
    }
  });
});
