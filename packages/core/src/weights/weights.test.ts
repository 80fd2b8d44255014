import { describe, expect, it } from 'vitest';
import { buildEfficientNet } from '../efficientnet.js';
import { WeightMismatchError } from '../errors.js';
import { specFor } from '../variants.js';
import { float32Tensor, type TensorMap } from '../tensor.js';
import { bindWeights, fromTorchvision, randomWeights, torchvisionPrefixes } from './index.js';

const spec = specFor('efficientnet_b0');
const graph = buildEfficientNet(spec);

describe('randomWeights', () => {
  it('is reproducible from its seed and follows each parameter init', () => {
    const a = randomWeights(graph, 5);
    const b = randomWeights(graph, 5);
    const c = randomWeights(graph, 6);
    expect(a.get('conv_stem.weight')!.data).toEqual(b.get('conv_stem.weight')!.data);
    expect(a.get('conv_stem.weight')!.data).not.toEqual(c.get('conv_stem.weight')!.data);
    expect(Array.from(a.get('bn1.running_var')!.data as Float32Array).every((v) => v === 1)).toBe(true);
    const w = a.get('conv_stem.weight')!.data as Float32Array;
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.7 * Math.sqrt(2 / (3 * 3 * 32)));
    expect(std).toBeLessThan(1.3 * Math.sqrt(2 / (3 * 3 * 32)));
  });
});

describe('bindWeights', () => {
  it('reports all problems at once, keeps the full lists, and hints at the naming', () => {
    const tv: TensorMap = new Map();
    for (const [name, t] of randomWeights(graph)) tv.set(name.replace('conv_stem', 'features.0.0').replace(/^blocks\./, 'features.'), t);
    let err: WeightMismatchError | undefined;
    try {
      bindWeights(graph, tv);
    } catch (e) {
      err = e as WeightMismatchError;
    }
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect(err!.missing.length).toBeGreaterThan(100);
    expect(err!.message).toMatch(/\.\.\. and \d+ more/);
    expect(err!.message).toMatch(/look like torchvision names; load them with weights format "torchvision"/);
  });
  it('converts float16/float64 weights to float32 and ignores num_batches_tracked', () => {
    const w = randomWeights(graph);
    const bn = w.get('bn1.weight')!;
    w.set('bn1.weight', { dtype: 'float64', shape: bn.shape, data: Float64Array.from(bn.data as Float32Array) });
    w.set('bn1.num_batches_tracked', { dtype: 'int64', shape: [], data: new BigInt64Array(1) });
    const bound = bindWeights(graph, w);
    expect(bound.get('bn1.weight')!.dtype).toBe('float32');
    expect(bound.has('bn1.num_batches_tracked')).toBe(false);
  });
});

describe('torchvision names', () => {
  it('maps every canonical parameter of B0 and V2-S exactly once', () => {
    for (const name of ['efficientnet_b0', 'efficientnetv2_s', 'efficientnet_b7']) {
      const s = specFor(name);
      const g = buildEfficientNet(s);
      const prefixes = [...torchvisionPrefixes(s).values()];
      expect(new Set(prefixes).size).toBe(prefixes.length);
      const modules = new Set(g.parameters.map((p) => p.name.slice(0, p.name.lastIndexOf('.'))));
      expect(new Set(prefixes)).toEqual(modules);
    }
  });
  it('renames the layouts with and without expansion and SE', () => {
    const s = specFor('efficientnetv2_s');
    const m = torchvisionPrefixes(s);
    expect(m.get('features.1.0.block.0.0')).toBe('blocks.0.0.conv');
    expect(m.get('features.2.0.block.1.1')).toBe('blocks.1.0.bn2');
    expect(m.get('features.4.0.block.2.fc1')).toBe('blocks.3.0.se.conv_reduce');
    expect(m.get('features.4.0.block.3.0')).toBe('blocks.3.0.conv_pwl');
    expect(m.get('features.7.1')).toBe('bn2');
    const renamed = fromTorchvision(s, new Map([['features.0.0.weight', float32Tensor([1])], ['mystery.weight', float32Tensor([1])]]));
    expect([...renamed.keys()]).toEqual(['conv_stem.weight', 'mystery.weight']);
  });
});
