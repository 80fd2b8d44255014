/**
 * Small graphs, one per node kind and configuration, drawn by fast-check: what the gradient checks differentiate.
 * Every case has static sizes, random weights (BN statistics away from identity) and inputs kept away from the
 * kinks of piecewise-linear functions, so that central differences are meaningful.
 */
import { ACTIVATION_FNS, type ActivationFn, type Graph, GraphBuilder, type GraphNode, type NodeKind, type Padding, seededNormal, type Tensor, type TensorMap } from '@effnet/core';
import fc from 'fast-check';
import { nontrivialWeights } from '../../../testing/graphs.js';
import { type GradCase, normalTensor } from './training-harness.js';

type Input = { name: string; channels: number; height: number; width: number };

function finish(name: string, g: GraphBuilder, outputs: string[], seed: number, trainBatchNorm = true, inputScale: Record<string, (x: Float32Array) => void> = {}): GradCase {
  const graph = g.build(outputs);
  const weights = withBatchNormScales(graph, nontrivialWeights(graph, seed), seed);
  const inputs = new Map<string, Tensor>();
  graph.inputs.forEach((inp, i) => {
    const t = normalTensor([batchOf(g), inp.channels, inp.height!, inp.width!], seed * 7 + i);
    inputScale[inp.name]?.(t.data as Float32Array);
    inputs.set(inp.name, t);
  });
  return { name, graph, weights, inputs, trainBatchNorm };
}

/** BatchNorm and GroupNorm scales away from 1 (nontrivialWeights recognises only timm's bn<k> names). */
function withBatchNormScales(graph: Graph, w: TensorMap, seed: number): TensorMap {
  const n = seededNormal(seed + 5);
  for (const node of graph.nodes) {
    if (node.kind !== 'batchNorm' && node.kind !== 'groupNorm') continue;
    const d = w.get(node.params.weight)!.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = 1 + 0.3 * n();
  }
  return w;
}

const batches = new WeakMap<GraphBuilder, number>();
const batchOf = (g: GraphBuilder) => batches.get(g) ?? 2;
function builder(name: string, inputs: Input[], batch = 2): GraphBuilder {
  const g = new GraphBuilder(name, inputs);
  batches.set(g, batch);
  return g;
}

/** Moves values within `gap` of a kink away from it, so finite differences do not straddle it. */
function awayFrom(kinks: number[], gap = 0.05) {
  return (d: Float32Array) => {
    for (let i = 0; i < d.length; i++) for (const k of kinks) if (Math.abs(d[i]! - k) < gap) d[i] = k + (d[i]! >= k ? gap : -gap);
  };
}

const seed = fc.integer({ min: 1, max: 1_000_000 });
const paddingArb = (k: number): fc.Arbitrary<Padding> =>
  fc.oneof(
    fc.constant<Padding>({ mode: 'symmetric' }),
    fc.constant<Padding>({ mode: 'same' }),
    fc.tuple(fc.nat(k - 1), fc.nat(k - 1), fc.nat(k - 1), fc.nat(k - 1)).map((pads): Padding => ({ mode: 'explicit', pads })),
  );

const conv = fc
  .record({ batch: fc.integer({ min: 1, max: 2 }), gi: fc.integer({ min: 1, max: 3 }), go: fc.integer({ min: 1, max: 3 }), mode: fc.constantFrom('one', 'depthwise', 'grouped'), k: fc.integer({ min: 1, max: 5 }), s: fc.integer({ min: 1, max: 3 }), d: fc.integer({ min: 1, max: 2 }), extraH: fc.nat(5), extraW: fc.nat(5), bias: fc.boolean(), seed })
  .chain((r) => paddingArb(r.k).map((padding) => ({ ...r, padding })))
  .map((r) => {
    const g = r.mode === 'one' ? 1 : r.mode === 'depthwise' ? r.gi + 1 : 2;
    const cin = r.mode === 'depthwise' ? g : g * r.gi;
    const cout = r.mode === 'depthwise' ? g : g * r.go;
    const span = r.d * (r.k - 1) + 1;
    const b = builder('conv', [{ name: 'x', channels: cin, height: span + r.extraH, width: span + r.extraW }], r.batch);
    const y = b.conv('conv', 'x', { inChannels: cin, outChannels: cout, kernel: r.k, stride: r.s, dilation: r.d, groups: g, padding: r.padding, bias: r.bias });
    return finish(`conv2d ${JSON.stringify({ ...r, seed: undefined })}`, b, [y], r.seed);
  });

/** Depthwise convs wide enough for ORT's NCHWc kernels (16 channels: a multiple of both block sizes). */
export const nchwcDepthwise = fc
  .record({ k: fc.constantFrom(3, 5), s: fc.integer({ min: 1, max: 2 }), d: fc.integer({ min: 1, max: 2 }), extra: fc.nat(4), bias: fc.boolean(), seed })
  .chain((r) => paddingArb(r.k).map((padding) => ({ ...r, padding })))
  .map((r) => {
    const size = r.d * (r.k - 1) + 2 + r.extra;
    const b = builder('dw', [{ name: 'x', channels: 16, height: size, width: size + 1 }]);
    const y = b.conv('dw', 'x', { inChannels: 16, outChannels: 16, kernel: r.k, stride: r.s, dilation: r.d, groups: 16, padding: r.padding, bias: r.bias });
    return finish(`NCHWc depthwise ${JSON.stringify({ ...r, seed: undefined })}`, b, [y], r.seed);
  });

const convTranspose = fc
  .record({ cin: fc.integer({ min: 1, max: 3 }), cout: fc.integer({ min: 1, max: 3 }), groups: fc.constantFrom(1, 2), k: fc.integer({ min: 1, max: 4 }), s: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 2, max: 5 }), w: fc.integer({ min: 2, max: 5 }), bias: fc.boolean(), seed })
  .chain((r) =>
    fc.record({ pads: fc.tuple(fc.nat(r.k - 1), fc.nat(r.k - 1), fc.nat(r.k - 1), fc.nat(r.k - 1)), op: fc.tuple(fc.nat(r.s - 1), fc.nat(r.s - 1)) }).map((p) => ({ ...r, ...p })),
  )
  .filter((r) => (r.h - 1) * r.s + r.k - r.pads[0] - r.pads[2] + r.op[0] > 0 && (r.w - 1) * r.s + r.k - r.pads[1] - r.pads[3] + r.op[1] > 0)
  .map((r) => {
    const cin = r.cin * r.groups;
    const cout = r.cout * r.groups;
    const b = builder('deconv', [{ name: 'x', channels: cin, height: r.h, width: r.w }]);
    const y = b.convTranspose('deconv', 'x', { inChannels: cin, outChannels: cout, kernel: r.k, stride: r.s, pads: r.pads, outputPadding: r.op, groups: r.groups, bias: r.bias });
    return finish(`convTranspose ${JSON.stringify({ ...r, seed: undefined })}`, b, [y], r.seed);
  });

const batchNorm = fc
  .record({ c: fc.integer({ min: 1, max: 4 }), batch: fc.integer({ min: 2, max: 3 }), h: fc.integer({ min: 2, max: 4 }), w: fc.integer({ min: 2, max: 4 }), train: fc.boolean(), vector: fc.boolean(), eps: fc.constantFrom(1e-3, 1e-5), momentum: fc.constantFrom(0.1, 0.01), seed })
  .map((r) => {
    const b = builder('bn', [{ name: 'x', channels: r.c, height: r.h, width: r.w }], r.batch);
    const x = r.vector ? b.flatten('flat', 'x') : 'x';
    const y = b.batchNorm('bn', x, r.vector ? r.c * r.h * r.w : r.c, r.eps, r.momentum);
    return finish(`batchNorm ${JSON.stringify({ ...r, seed: undefined })}`, b, [y], r.seed, r.train);
  });

const groupNorm = fc
  .record({ groups: fc.integer({ min: 1, max: 3 }), per: fc.integer({ min: 1, max: 3 }), batch: fc.integer({ min: 1, max: 2 }), h: fc.integer({ min: 1, max: 4 }), w: fc.integer({ min: 3, max: 4 }), eps: fc.constantFrom(1e-5, 1e-3), seed })
  .map((r) => {
    const c = r.groups * r.per;
    const b = builder('gn', [{ name: 'x', channels: c, height: r.h, width: r.w }], r.batch);
    const y = b.groupNorm('gn', 'x', r.groups, c, r.eps);
    return finish(`groupNorm ${JSON.stringify({ ...r, seed: undefined })}`, b, [y], r.seed);
  });

const KINKS: Partial<Record<ActivationFn, number[]>> = { relu: [0], relu6: [0, 6], hardSwish: [-3, 3], hardSigmoid: [-3, 3] };
const activation = fc.record({ fn: fc.constantFrom(...ACTIVATION_FNS), seed }).map((r) => {
  const b = builder('act', [{ name: 'x', channels: 3, height: 4, width: 5 }]);
  const y = b.activation('act', 'x', r.fn);
  // Spread inputs over [-8, 8] so relu6 and the hard functions see every piece.
  const spread = (d: Float32Array) => {
    for (let i = 0; i < d.length; i++) d[i] = d[i]! * 4;
    awayFrom(KINKS[r.fn] ?? [])(d);
  };
  return finish(`activation ${r.fn}`, b, [y], r.seed, true, { x: spread });
});

const softmax = fc.record({ c: fc.integer({ min: 2, max: 5 }), seed }).map((r) => {
  const b = builder('softmax', [{ name: 'x', channels: r.c, height: 3, width: 2 }]);
  return finish(`softmax c=${r.c}`, b, [b.softmax('softmax', 'x', 1)], r.seed);
});

const add = fc.record({ n: fc.integer({ min: 2, max: 4 }), repeat: fc.boolean(), seed }).map((r) => {
  const inputs = Array.from({ length: r.n }, (_, i) => ({ name: `x${i}`, channels: 3, height: 3, width: 4 }));
  const b = builder('add', inputs);
  // The same tensor twice in one sum: its gradient counts twice.
  const names = inputs.map((i) => i.name);
  return finish(`add n=${r.n}${r.repeat ? ' (repeated input)' : ''}`, b, [b.add('sum', r.repeat ? [...names, names[0]!] : names)], r.seed);
});

const mul = fc.record({ gate: fc.boolean(), seed }).map((r) => {
  const b = builder('mul', [
    { name: 'x', channels: 4, height: 3, width: 5 },
    { name: 'g', channels: 4, height: r.gate ? 1 : 3, width: r.gate ? 1 : 5 },
  ]);
  return finish(`mul ${r.gate ? '[N, C, 1, 1] gate' : 'same shape'}`, b, [b.mul('mul', 'x', 'g')], r.seed);
});

const globalAvgPool = fc.record({ keep: fc.boolean(), seed }).map((r) => {
  const b = builder('gap', [{ name: 'x', channels: 3, height: 4, width: 3 }]);
  return finish(`globalAvgPool keepDims=${r.keep}`, b, [b.globalAvgPool('gap', 'x', r.keep)], r.seed);
});

const flatten = seed.map((s) => {
  const b = builder('flatten', [{ name: 'x', channels: 2, height: 3, width: 2 }]);
  return finish('flatten', b, [b.flatten('flat', 'x')], s);
});

const dense = fc.record({ out: fc.integer({ min: 1, max: 5 }), bias: fc.boolean(), seed }).map((r) => {
  const b = builder('dense', [{ name: 'x', channels: 3, height: 2, width: 2 }]);
  return finish(`dense out=${r.out} bias=${r.bias}`, b, [b.dense('fc', b.flatten('flat', 'x'), 12, r.out, r.bias)], r.seed);
});

const dropout = fc.record({ kind: fc.constantFrom('dropout', 'dropPath'), rate: fc.constantFrom(0, 0.2, 0.5), seed }).map((r) => {
  const b = builder('drop', [{ name: 'x', channels: 3, height: 3, width: 3 }], 4);
  const y = r.kind === 'dropout' ? b.dropout('drop', 'x', r.rate) : b.dropPath('drop', 'x', r.rate);
  return finish(`${r.kind} rate=${r.rate}`, b, [y], r.seed);
});

const maxPool = fc
  .record({ k: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 3, max: 7 }), w: fc.integer({ min: 3, max: 7 }), seed })
  .chain((r) => paddingArb(r.k).map((padding) => ({ ...r, padding })))
  .map((r) => {
    const b = builder('pool', [{ name: 'x', channels: 2, height: r.h, width: r.w }]);
    return finish(`maxPool ${JSON.stringify({ ...r, seed: undefined })}`, b, [b.maxPool('pool', 'x', r.k, r.s, r.padding)], r.seed);
  });

const resize = fc
  .record({
    mode: fc.constantFrom('nearest', 'bilinear') as fc.Arbitrary<'nearest' | 'bilinear'>,
    to: fc.oneof(fc.constantFrom(2, 3, 0.5).map((scale) => ({ scale })), fc.record({ h: fc.integer({ min: 1, max: 9 }), w: fc.integer({ min: 1, max: 9 }) })),
    alignCorners: fc.boolean(),
    seed,
  })
  .map((r) => {
    const like = 'h' in r.to ? r.to : null;
    const b = builder('resize', [{ name: 'x', channels: 2, height: 4, width: 6 }, ...(like ? [{ name: 'like', channels: 1, height: like.h, width: like.w }] : [])]);
    const ac = r.mode === 'bilinear' && r.alignCorners;
    const y = b.resize('resize', 'x', r.mode, like ? { like: 'like' } : (r.to as { scale: number }), ac);
    return finish(`resize ${r.mode}${ac ? ' align_corners' : ''} ${JSON.stringify(r.to)}`, b, [y], r.seed);
  });

const concat = fc.record({ channels: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 2, maxLength: 3 }), seed }).map((r) => {
  const inputs = r.channels.map((c, i) => ({ name: `x${i}`, channels: c, height: 3, width: 2 }));
  const b = builder('concat', inputs);
  return finish(`concat ${r.channels.join('+')}`, b, [b.concat('cat', inputs.map((i) => i.name))], r.seed);
});

const weightedSum = fc.record({ n: fc.integer({ min: 2, max: 3 }), normalization: fc.constantFrom('fast', 'softmax') as fc.Arbitrary<'fast' | 'softmax'>, seed }).map((r) => {
  const inputs = Array.from({ length: r.n }, (_, i) => ({ name: `x${i}`, channels: 2, height: 3, width: 3 }));
  const b = builder('wsum', inputs);
  const c = finish(`weightedSum ${r.normalization} n=${r.n}`, b, [b.weightedSum('fuse', inputs.map((i) => i.name), r.normalization)], r.seed);
  // Fusion weights away from relu's kink, one of them negative (relu cuts its gradient).
  const w = c.weights.get('fuse.weight')!.data as Float32Array;
  w.forEach((_, i) => (w[i] = (i === 0 && r.normalization === 'fast' ? -1 : 1) * (0.3 + 0.4 * i)));
  return c;
});

/** One arbitrary per node kind: the test draws cases from each. */
export const CASES: Record<NodeKind, fc.Arbitrary<GradCase>> = {
  conv2d: conv,
  convTranspose,
  batchNorm,
  groupNorm,
  activation,
  softmax,
  add,
  mul,
  globalAvgPool,
  flatten,
  dense,
  dropout: dropout.filter((c) => c.graph.nodes[0]!.kind === 'dropout'),
  dropPath: dropout.filter((c) => c.graph.nodes[0]!.kind === 'dropPath'),
  maxPool,
  resize,
  concat,
  weightedSum,
};

/** Composite graphs: every kind at once (BN in both modes), and a weight read by two convs (gradients add up). */
export function compositeCases(graphs: { everyKind: () => Graph }): GradCase[] {
  const every = graphs.everyKind();
  const weights = withBatchNormScales(every, nontrivialWeights(every, 5), 5);
  const input = normalTensor([2, 3, 16, 16], 21);
  const staticEvery: Graph = { ...every, inputs: every.inputs.map((i) => ({ ...i, height: 16, width: 16 })) };
  const b = builder('shared', [{ name: 'x', channels: 3, height: 6, width: 6 }]);
  const a1 = b.conv('a', 'x', { inChannels: 3, outChannels: 3, kernel: 3, padding: { mode: 'symmetric' } });
  const a2 = b.conv('b', b.activation('act', a1, 'silu'), { inChannels: 3, outChannels: 3, kernel: 3, padding: { mode: 'same' } });
  const shared = finish('shared weight', b, [a2], 9);
  // The second conv reads the first's weight: no GraphBuilder API shares parameters, so rewire the node.
  const nodes = shared.graph.nodes.map((n): GraphNode => (n.name === 'b' && n.kind === 'conv2d' ? { ...n, params: { weight: 'a.weight' } } : n));
  shared.graph = { ...shared.graph, nodes, parameters: shared.graph.parameters.filter((p) => p.name !== 'b.weight') };
  shared.weights.delete('b.weight');
  // Pointwise convs on both sides of the weight-gradient switch (batched MatMul vs Transpose + Gemm).
  const pw = builder('pointwise', [{ name: 'x', channels: 8, height: 2, width: 1 }, { name: 'z', channels: 3, height: 6, width: 5 }]);
  const pwOut = [pw.conv('pw_gemm', 'x', { inChannels: 8, outChannels: 6, kernel: 1, padding: { mode: 'symmetric' } }), pw.conv('pw_batched', 'z', { inChannels: 3, outChannels: 4, kernel: 1, padding: { mode: 'symmetric' } })];
  // Full KxK convs with more input channels than taps (the per-tap Gemm weight gradient).
  const wide = builder('wide', [{ name: 'x', channels: 12, height: 7, width: 6 }]);
  const wideOut = [
    wide.conv('k3_s2_same', 'x', { inChannels: 12, outChannels: 5, kernel: 3, stride: 2, padding: { mode: 'same' }, bias: true }),
    wide.conv('k2_d2_explicit', 'x', { inChannels: 12, outChannels: 3, kernel: 2, dilation: 2, padding: { mode: 'explicit', pads: [1, 0, 0, 2] } }),
  ];
  return [
    finish('pointwise convs (Gemm and batched weight gradients)', pw, pwOut, 13),
    finish('wide KxK convs (per-tap weight gradients)', wide, wideOut, 14),
    { name: 'everyKind (batch statistics)', graph: staticEvery, weights, inputs: new Map([['input', input]]), trainBatchNorm: true },
    { name: 'everyKind (running statistics)', graph: staticEvery, weights, inputs: new Map([['input', input]]), trainBatchNorm: false },
    shared,
  ];
}
