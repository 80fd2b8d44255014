import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileToOnnx } from '@effnet/backend-onnx';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { onnxExportMetadata } from '../models/onnx-export.js';
import { loadModelWeights } from '../models/resolve.js';
import { benchmark } from './measure.js';
import { latencyStats, timeRuns } from './timing.js';

describe('latency statistics', () => {
  it('median and p90 lie within the runs, in order, whatever their order; throughput is batch / median', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.01, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 50 }), fc.integer({ min: 1, max: 64 }), (ms, batch) => {
        const s = latencyStats(ms, batch);
        expect(s.minMs).toBe(Math.min(...ms));
        expect(s.medianMs).toBeGreaterThanOrEqual(s.minMs);
        expect(s.p90Ms).toBeGreaterThanOrEqual(s.medianMs);
        expect(s.p90Ms).toBeLessThanOrEqual(Math.max(...ms));
        expect(s.imagesPerSecond).toBeCloseTo((1000 * batch) / s.medianMs, 6);
        expect(latencyStats([...ms].reverse(), batch)).toEqual(s);
      }),
    );
    expect(latencyStats([4, 1, 3, 2], 2)).toMatchObject({ medianMs: 2.5, minMs: 1, meanMs: 2.5, imagesPerSecond: 800 });
  });

  it('times only the runs after the warm-up, and reports each', async () => {
    let calls = 0;
    const seen: number[] = [];
    const ms = await timeRuns(async () => void calls++, { warmup: 2, iterations: 5, onRun: (d) => seen.push(d) });
    expect(calls).toBe(7);
    expect(ms).toHaveLength(5);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('benchmark', () => {
  it('times inference and a training step, and says what it ran on', async () => {
    const r = await benchmark({ model: 'efficientnet_phi-4', resolution: 32, batch: 2, warmup: 1, iterations: 2 });
    expect(r).toMatchObject({ task: 'infer', backend: 'onnx', device: 'cpu', precision: 'fp32', batch: 2, resolution: [32, 32], iterations: 2, randomWeights: true });
    expect(r.latenciesMs).toHaveLength(2);
    expect(r.peakRssMB).toBeGreaterThan(0);
    const fp16 = await benchmark({ model: 'efficientnet_phi-4', resolution: 32, precision: 'fp16', warmup: 0, iterations: 1 });
    expect(fp16.precision).toBe('fp16');
    const t = await benchmark({ model: 'efficientnet_phi-4', task: 'train', resolution: 32, batch: 4, warmup: 1, iterations: 1 });
    expect(t).toMatchObject({ task: 'train', backend: 'onnx', batch: 4 });
    expect(t.imagesPerSecond).toBeGreaterThan(0);
  });

  it('times a segmenter: masks of whole images, and a training step on per-pixel labels', async () => {
    const r = await benchmark({ model: 'unet_efficientnet_phi-4', task: 'segment', resolution: 64, batch: 2, warmup: 1, iterations: 2 });
    expect(r).toMatchObject({ task: 'segment', batch: 2, resolution: [64, 64], randomWeights: true });
    expect(r.imagesPerSecond).toBeGreaterThan(0);
    const t = await benchmark({ model: 'fpn_efficientnet_phi-4', task: 'train', resolution: 64, batch: 2, warmup: 1, iterations: 1 });
    expect(t).toMatchObject({ task: 'train', batch: 2 });
    await expect(benchmark({ model: 'efficientdet_phi-4', task: 'segment', resolution: 128 })).rejects.toThrow(/is a detector/);
    await expect(benchmark({ model: 'bifpnseg_efficientdet_phi-4', task: 'segment', resolution: 96 })).rejects.toThrow(/invalid --resolution: 96 \(a positive multiple of 128\)/);
    // An exported segmenter (.onnx) runs as it is.
    const m = await loadModelWeights('unet_efficientnet_phi-4', { inputResolution: 64, numClasses: 3 });
    const file = join(mkdtempSync(join(tmpdir(), 'effnet-bench-seg-')), 'seg.onnx');
    writeFileSync(file, compileToOnnx(m.graph, m.weights, { metadata: onnxExportMetadata(m, { file }) }).model);
    expect(await benchmark({ model: file, task: 'segment', warmup: 0, iterations: 1 })).toMatchObject({ task: 'segment', resolution: [64, 64], precision: 'fp32' });
  });

  it('an exported .onnx runs at its own precision; what cannot be measured is an error saying why', async () => {
    const m = await loadModelWeights('efficientnet_phi-4', { inputResolution: 32 });
    const file = join(mkdtempSync(join(tmpdir(), 'effnet-bench-')), 'm.onnx');
    writeFileSync(file, compileToOnnx(m.graph, m.weights, { metadata: onnxExportMetadata(m, { file }) }).model);
    expect(await benchmark({ model: file, warmup: 0, iterations: 1 })).toMatchObject({ precision: 'fp32', randomWeights: true, resolution: [32, 32] });
    await expect(benchmark({ model: file, precision: 'int8' })).rejects.toThrow(/fp32, the precision .* was exported at \(export it again with --int8\)/);
    await expect(benchmark({ model: 'efficientnet_phi-4', precision: 'int8' })).rejects.toThrow(/export it first \(effnet export efficientnet_phi-4 --int8/);
    await expect(benchmark({ model: file, task: 'train' })).rejects.toThrow(/inference weights only/);
    await expect(benchmark({ model: 'efficientnet_phi-4', task: 'detect' })).rejects.toThrow(/is a classifier/);
    await expect(benchmark({ model: 'efficientnet_phi-4', task: 'segment' })).rejects.toThrow(/infer or train: efficientnet_phi-4 is a classifier/);
  });
});
