import { describe, expect, it } from 'vitest';
import { analyzeGraph, buildEfficientNet, type Conv2dNode, type Graph, GraphBuilder, GraphValidationError, inferShapes, prepareForInference, randomWeights, seededNormal, specFor, validateGraph } from './index.js';

const clone = (g: Graph): Graph => JSON.parse(JSON.stringify(g));

describe('buildEfficientNet', () => {
  const b0 = buildEfficientNet(specFor('efficientnet_b0'));

  it('is JSON-serialisable and still valid after a round trip', () => {
    const back = clone(b0);
    expect(back).toEqual(b0);
    expect(() => validateGraph(back)).not.toThrow();
  });

  it('names parameters as timm does', () => {
    const names = b0.parameters.map((p) => p.name);
    for (const n of [
      'conv_stem.weight', 'bn1.running_var', 'blocks.0.0.conv_dw.weight', 'blocks.0.0.se.conv_reduce.bias', 'blocks.0.0.conv_pw.weight',
      'blocks.1.0.conv_pw.weight', 'blocks.1.0.conv_pwl.weight', 'blocks.1.0.bn3.bias', 'blocks.6.0.se.conv_expand.weight',
      'conv_head.weight', 'bn2.weight', 'classifier.weight', 'classifier.bias',
    ])
      expect(names).toContain(n);
    const v2 = buildEfficientNet(specFor('efficientnetv2_s')).parameters.map((p) => p.name);
    for (const n of ['blocks.0.0.conv.weight', 'blocks.1.0.conv_exp.weight', 'blocks.1.0.conv_pwl.weight', 'blocks.1.0.bn2.weight', 'blocks.3.0.se.conv_reduce.weight'])
      expect(v2).toContain(n);
    expect(b0.parameters.find((p) => p.name === 'blocks.1.0.conv_dw.weight')?.shape).toEqual([96, 1, 3, 3]);
  });

  it('exposes endpoints at strides 2..32 with their channels', () => {
    expect(b0.endpoints.map((e) => [e.stride, e.channels, e.node])).toEqual([
      [2, 16, 'blocks.0.0'],
      [4, 24, 'blocks.1.1'],
      [8, 40, 'blocks.2.1'],
      [16, 112, 'blocks.4.2'],
      [32, 320, 'blocks.6.0'],
    ]);
    const a = analyzeGraph(b0, { height: 512, width: 512 });
    expect(a.endpoints.map((e) => e.shape)).toEqual([[1, 16, 256, 256], [1, 24, 128, 128], [1, 40, 64, 64], [1, 112, 32, 32], [1, 320, 16, 16]]);
    expect(a.outputs.logits).toEqual([1, 1000]);
  });

  it('handles any input size, dynamic or static, for both padding modes', () => {
    const dyn = buildEfficientNet(specFor('tf_efficientnet_b0'), { inputResolution: null, includeTop: false, numClasses: 10 });
    expect(inferShapes(dyn).get('features')).toEqual([null, 1280, null, null]);
    // TF SAME: ceil(in / stride) at each stride-2 step: 225 -> 113 -> 57 -> 29 -> 15 -> 8.
    expect(analyzeGraph(dyn, { height: 225, width: 100 }).outputs.features).toEqual([1, 1280, 8, 4]);
    const sym = buildEfficientNet(specFor('efficientnet_b0'), { inputResolution: [225, 100] });
    expect(analyzeGraph(sym).endpoints.at(-1)!.shape).toEqual([1, 320, 8, 4]);
  });

  it('applies linear stochastic depth on residual blocks only', () => {
    const drops = b0.nodes.filter((n) => n.kind === 'dropPath').map((n) => [n.name, (n as { rate: number }).rate]);
    // 16 blocks; blocks.1.1 is the 3rd (index 2): 0.2 * 2 / 16.
    expect(drops[0]).toEqual(['blocks.1.1.drop_path', 0.025]);
    expect(drops.every(([, r]) => (r as number) < 0.2)).toBe(true);
  });
});

describe('validateGraph', () => {
  const small = () => {
    const g = new GraphBuilder('t', [{ name: 'input', channels: 3, height: 8, width: 8 }]);
    let x = g.conv('c1', 'input', { inChannels: 3, outChannels: 4, kernel: 3, padding: { mode: 'symmetric' } });
    const a = g.maxPool('p1', x, 3, 2, { mode: 'same' });
    const b = g.conv('c2', a, { inChannels: 4, outChannels: 4, kernel: 1, padding: { mode: 'symmetric' } });
    const up = g.resize('up', b, 'nearest', { like: x });
    x = g.weightedSum('fuse', [x, up]);
    x = g.concat('cat', [x, up]);
    x = g.convTranspose('deconv', x, { inChannels: 8, outChannels: 2, kernel: 2, stride: 2, bias: true });
    x = g.softmax('prob', x, 1);
    return g.build([x]);
  };

  it('accepts detection/segmentation node kinds', () => {
    const g = small();
    expect(inferShapes(g, { batch: 1 }).get('prob')).toEqual([1, 2, 16, 16]);
  });

  const cases: [string, (g: Graph) => void, RegExp][] = [
    ['bad format', (g) => ((g as { format: string }).format = 'x'), /graph", field format/],
    ['dangling input', (g) => (g.nodes[1]!.inputs = ['nope']), /"p1", field inputs: "nope" is not a graph input/],
    ['duplicate name', (g) => (g.nodes[1]!.name = 'c1'), /"c1", field name: used twice/],
    ['unknown kind', (g) => ((g.nodes[1] as { kind: string }).kind = 'warp'), /"p1", field kind: "warp" is not one of/],
    ['wrong channels', (g) => ((g.nodes[2] as { inChannels: number }).inChannels = 5), /"c2", field (params.weight|inChannels)/],
    ['missing parameter', (g) => g.parameters.splice(0, 1), /"c1", field params.weight: "c1.weight" is not declared/],
    ['mis-shaped parameter', (g) => (g.parameters[0]!.shape = [4, 3, 5, 5]), /"c1", field params.weight: "c1.weight" has shape \[4, 3, 5, 5\], the node needs \[4, 3, 3, 3\]/],
    ['unused parameter', (g) => g.parameters.push({ name: 'x.weight', shape: [1], trainable: true, init: { kind: 'constant', value: 0 } }), /parameters.x.weight: declared but read by no node/],
    ['bad output', (g) => (g.outputs = ['zzz']), /outputs: "zzz" is not a node/],
    ['bad padding', (g) => ((g.nodes[0] as { padding: unknown }).padding = { mode: 'valid' }), /"c1", field padding.mode/],
    ['bad rate', (g) => g.nodes.push({ kind: 'dropout', name: 'd', inputs: ['prob'], rate: 2 }), /"d", field rate/],
    ['concat mismatch', (g) => (g.nodes[5]!.inputs = ['fuse', 'p1']), /"cat", field inputs\[1\]/],
  ];
  it.each(cases)('rejects %s, naming node and field', (_, mutate, msg) => {
    const g = clone(small());
    mutate(g);
    expect(() => validateGraph(g)).toThrow(GraphValidationError);
    expect(() => validateGraph(g)).toThrow(msg);
  });
});

describe('shared parameters', () => {
  /** Two branches read one conv (as a detection head reads its convs at every level), each with its own BN. */
  const shared = (mark = true) => {
    const g = new GraphBuilder('s', [{ name: 'input', channels: 4, height: 8, width: 8 }]);
    const down = g.maxPool('down', 'input', 3, 2, { mode: 'same' });
    const outs = ['input', down].map((x, i) => {
      const c = g.conv(`level${i}.conv`, x, { inChannels: 4, outChannels: 4, kernel: 3, padding: { mode: 'same' }, bias: true, params: 'head.conv', shared: mark });
      return g.batchNorm(`head.bn.${i}`, c, 4, 1e-3, 0.01);
    });
    return g.build(outs);
  };

  it('lets several nodes read a parameter declared shared, and counts it once', () => {
    const g = shared();
    expect(g.parameters.filter((p) => p.name.startsWith('head.conv')).map((p) => [p.name, p.shared])).toEqual([['head.conv.weight', true], ['head.conv.bias', true]]);
    expect(analyzeGraph(g).params).toBe(4 * 4 * 9 + 4 + 2 * 8);
  });

  it('refuses a second reader of an unshared parameter, naming the fix', () => {
    expect(() => shared(false)).toThrow(/"head.conv.weight", field params: declared twice; nodes that read one parameter must all pass shared: true/);
    const g = clone(shared());
    for (const p of g.parameters) delete p.shared;
    expect(() => validateGraph(g)).toThrow(/"level1.conv", field params.weight: "head.conv.weight" is already read by another node \(declare it shared: true/);
  });

  it('refuses a shared parameter declared with another shape by a later reader', () => {
    const g = new GraphBuilder('s', [{ name: 'input', channels: 4, height: 8, width: 8 }]);
    g.conv('a', 'input', { inChannels: 4, outChannels: 4, kernel: 3, padding: { mode: 'same' }, params: 'head', shared: true });
    expect(() => g.conv('b', 'input', { inChannels: 4, outChannels: 4, kernel: 1, padding: { mode: 'same' }, params: 'head', shared: true })).toThrow(
      /"head.weight", field params: shared with shape \[4, 4, 3, 3\], this node needs \[4, 4, 1, 1\]/,
    );
  });

  it('prepareForInference folds each reader\'s BN into its own copy and leaves the shared tensors alone', () => {
    const g = shared();
    const w = randomWeights(g, 1);
    const n = seededNormal(2);
    for (const [name, t] of w) if (/running_var|bn\.\d\.weight/.test(name)) (t.data as Float32Array).forEach((_, i, a) => (a[i] = 0.5 + Math.abs(n())));
    const before = Float32Array.from(w.get('head.conv.weight')!.data as Float32Array);
    const p = prepareForInference(g, w);
    expect(Array.from(w.get('head.conv.weight')!.data as Float32Array)).toEqual(Array.from(before));
    const convs = p.graph.nodes.filter((x) => x.kind === 'conv2d') as Conv2dNode[];
    expect(convs.map((c) => c.params)).toEqual([
      { weight: 'level0.conv.weight', bias: 'level0.conv.bias' },
      { weight: 'level1.conv.weight', bias: 'level1.conv.bias' },
    ]);
    expect(p.graph.parameters.some((x) => x.name.startsWith('head.conv'))).toBe(false);
    expect(p.weights.has('head.conv.weight')).toBe(false);
    // Each copy is the shared weight scaled by its own level's gamma / sqrt(var + eps).
    const at = (name: string, k: number) => (w.get(name)!.data as Float32Array)[k]!;
    const scale = (i: number, c: number) => at(`head.bn.${i}.weight`, c) / Math.sqrt(at(`head.bn.${i}.running_var`, c) + 1e-3);
    for (const i of [0, 1]) expect((p.weights.get(`level${i}.conv.weight`)!.data as Float32Array)[40]).toBeCloseTo(before[40]! * scale(i, 1), 6);
  });
});
