import { describe, expect, it } from 'vitest';
import { analyzeGraph, buildEfficientNet, type Graph, GraphBuilder, GraphValidationError, inferShapes, specFor, validateGraph } from './index.js';

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
