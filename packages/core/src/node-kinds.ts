/**
 * One record per node kind: how many inputs it takes, which fields must hold what, the parameters it reads (by role,
 * with their shapes), the shape of its output and the multiply-accumulates it costs. The validator, shape inference
 * and analysis read these records; a new kind is a new GraphNode member plus one record here (the mapped type below
 * refuses to compile without it) plus one case per backend compiler.
 */
import { GraphValidationError } from './errors.js';
import { ACTIVATION_FNS, type GraphNode, type NodeKind, type Padding } from './graph.js';
import { outSizeFor } from './padding.js';

/** A tensor shape; null is an unknown (dynamic) size. Feature maps are [N, C, H, W], vectors [N, C]. */
export type Shape = (number | null)[];

export interface NodeKindRule<N extends GraphNode> {
  /** Fewest and most inputs. */
  arity: readonly [min: number, max: number];
  /** Checks the node's own fields (not its inputs); throws GraphValidationError naming the field. */
  check(node: N): void;
  /** The parameter shapes the node reads, by role (`weight`, `bias`, ...); `bias` is optional wherever it appears. */
  params(node: N): Record<string, number[]>;
  /** Output shape from the input shapes, checking that they agree with the node. */
  shape(node: N, inputs: Shape[]): Shape;
  /** Multiply-accumulates for these shapes (conv, transposed conv and dense count; the rest are free). */
  macs(node: N, inputs: Shape[], output: Shape): number;
}

type Rules = { [K in NodeKind]: NodeKindRule<Extract<GraphNode, { kind: K }>> };

const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isNonNegInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

function fail(node: string, field: string, reason: string): never {
  throw new GraphValidationError(node, field, reason);
}

function pair(node: GraphNode, field: string, v: unknown, check = isPosInt): void {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => check(x))) fail(node.name, field, `must be a pair of ${check === isPosInt ? 'positive' : 'non-negative'} integers, got ${JSON.stringify(v)}`);
}

function quad(node: GraphNode, field: string, v: unknown): void {
  if (!Array.isArray(v) || v.length !== 4 || !v.every(isNonNegInt)) fail(node.name, field, `must be [top, left, bottom, right] non-negative integers, got ${JSON.stringify(v)}`);
}

function padding(node: GraphNode, p: Padding | undefined): void {
  if (!p || typeof p !== 'object') return fail(node.name, 'padding', 'missing; use {mode: "symmetric"}, {mode: "same"} or {mode: "explicit", pads}');
  if (p.mode === 'explicit') return quad(node, 'padding.pads', p.pads);
  if (p.mode !== 'symmetric' && p.mode !== 'same') fail(node.name, 'padding.mode', `"${(p as { mode: unknown }).mode}" is not symmetric, same or explicit`);
}

function positive(node: GraphNode, field: string, v: unknown): void {
  if (!isPosInt(v)) fail(node.name, field, `must be a positive integer, got ${JSON.stringify(v)}`);
}

function rate(node: GraphNode, v: unknown): void {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) fail(node.name, 'rate', `must be in [0, 1), got ${JSON.stringify(v)}`);
}

function channelCounts(node: GraphNode & { inChannels: number; outChannels: number; groups: number }): void {
  positive(node, 'inChannels', node.inChannels);
  positive(node, 'outChannels', node.outChannels);
  positive(node, 'groups', node.groups);
  if (node.inChannels % node.groups || node.outChannels % node.groups)
    fail(node.name, 'groups', `${node.groups} does not divide inChannels ${node.inChannels} and outChannels ${node.outChannels}`);
}

const spatial = (fn: (x: number) => number, x: number | null): number | null => (x === null ? null : fn(x));

function rank4(node: GraphNode, s: Shape, i = 0): [number | null, number, number | null, number | null] {
  if (s.length !== 4) fail(node.name, `inputs[${i}]`, `needs a [N, C, H, W] feature map, got rank ${s.length}`);
  return s as [number | null, number, number | null, number | null];
}

function channelsMatch(node: GraphNode, expected: number, actual: number | null, field = 'inChannels'): void {
  if (actual !== null && actual !== expected) fail(node.name, field, `expects ${expected} input channels, input "${node.inputs[0]}" has ${actual}`);
}

function sameShapes(node: GraphNode, inputs: Shape[]): Shape {
  const first = inputs[0]!;
  for (let i = 1; i < inputs.length; i++) {
    const s = inputs[i]!;
    const ok = s.length === first.length && s.every((d, k) => d === null || first[k] === null || d === first[k]);
    if (!ok) fail(node.name, `inputs[${i}]`, `shape [${s.join(', ')}] of "${node.inputs[i]}" differs from [${first.join(', ')}] of "${node.inputs[0]}"`);
  }
  return first;
}

const known = (s: Shape) => s.map((d) => d ?? 1) as number[];
const free = () => 0;
const none = () => ({});
const nothing = () => undefined;
const passThrough = (_: GraphNode, inputs: Shape[]) => inputs[0]!;

export const NODE_RULES: Rules = {
  conv2d: {
    arity: [1, 1],
    check(node) {
      channelCounts(node);
      pair(node, 'kernel', node.kernel);
      pair(node, 'stride', node.stride);
      pair(node, 'dilation', node.dilation);
      padding(node, node.padding);
    },
    params: (node) => ({ weight: [node.outChannels, node.inChannels / node.groups, ...node.kernel], bias: [node.outChannels] }),
    shape(node, [x]) {
      const [n, c, h, w] = rank4(node, x!);
      channelsMatch(node, node.inChannels, c);
      return [
        n,
        node.outChannels,
        spatial((v) => outSizeFor(node.padding, v, node.kernel[0], node.stride[0], node.dilation[0], 0), h),
        spatial((v) => outSizeFor(node.padding, v, node.kernel[1], node.stride[1], node.dilation[1], 1), w),
      ];
    },
    macs(node, _inputs, out) {
      const [n, c, h, w] = known(out);
      return n! * c! * h! * w! * (node.inChannels / node.groups) * node.kernel[0] * node.kernel[1];
    },
  },
  convTranspose: {
    arity: [1, 1],
    check(node) {
      channelCounts(node);
      pair(node, 'kernel', node.kernel);
      pair(node, 'stride', node.stride);
      quad(node, 'pads', node.pads);
      pair(node, 'outputPadding', node.outputPadding, isNonNegInt);
    },
    params: (node) => ({ weight: [node.inChannels, node.outChannels / node.groups, ...node.kernel], bias: [node.outChannels] }),
    shape(node, [x]) {
      const [n, c, h, w] = rank4(node, x!);
      channelsMatch(node, node.inChannels, c);
      const [t, l, b, r] = node.pads;
      return [
        n,
        node.outChannels,
        spatial((v) => (v - 1) * node.stride[0] + node.kernel[0] - t - b + node.outputPadding[0], h),
        spatial((v) => (v - 1) * node.stride[1] + node.kernel[1] - l - r + node.outputPadding[1], w),
      ];
    },
    macs(node, [x]) {
      const [n, c, h, w] = known(x!);
      return n! * c! * h! * w! * (node.outChannels / node.groups) * node.kernel[0] * node.kernel[1];
    },
  },
  batchNorm: {
    arity: [1, 1],
    check(node) {
      positive(node, 'channels', node.channels);
      if (!(node.eps > 0)) fail(node.name, 'eps', `must be positive, got ${JSON.stringify(node.eps)}`);
      if (!(node.momentum > 0 && node.momentum <= 1)) fail(node.name, 'momentum', `must be in (0, 1], got ${JSON.stringify(node.momentum)}`);
    },
    params: (node) => ({ weight: [node.channels], bias: [node.channels], runningMean: [node.channels], runningVar: [node.channels] }),
    shape(node, [x]) {
      channelsMatch(node, node.channels, x![1] ?? null, 'channels');
      return x!;
    },
    macs: free,
  },
  groupNorm: {
    arity: [1, 1],
    check(node) {
      positive(node, 'channels', node.channels);
      positive(node, 'groups', node.groups);
      if (node.channels % node.groups) fail(node.name, 'groups', `${node.groups} does not divide channels ${node.channels}`);
      if (!(node.eps > 0)) fail(node.name, 'eps', `must be positive, got ${JSON.stringify(node.eps)}`);
    },
    params: (node) => ({ weight: [node.channels], bias: [node.channels] }),
    shape(node, [x]) {
      rank4(node, x!);
      channelsMatch(node, node.channels, x![1] ?? null, 'channels');
      return x!;
    },
    macs: free,
  },
  activation: {
    arity: [1, 1],
    check(node) {
      if (!ACTIVATION_FNS.includes(node.fn)) fail(node.name, 'fn', `"${node.fn}" is not one of ${ACTIVATION_FNS.join(', ')}`);
    },
    params: none,
    shape: passThrough,
    macs: free,
  },
  softmax: {
    arity: [1, 1],
    check(node) {
      if (!isNonNegInt(node.axis)) fail(node.name, 'axis', `must be a non-negative integer, got ${JSON.stringify(node.axis)}`);
    },
    params: none,
    shape: passThrough,
    macs: free,
  },
  add: { arity: [2, Infinity], check: nothing, params: none, shape: sameShapes, macs: free },
  mul: {
    arity: [2, 2],
    check: nothing,
    params: none,
    shape(node, [a, b]) {
      const gate = b!.length === a!.length && b!.length === 4 && b![2] === 1 && b![3] === 1;
      const ok = b!.length === a!.length && b!.every((d, k) => d === null || a![k] === null || d === a![k] || (gate && k >= 2));
      if (!ok) fail(node.name, 'inputs[1]', `shape [${b!.join(', ')}] does not broadcast to [${a!.join(', ')}]`);
      return a!;
    },
    macs: free,
  },
  globalAvgPool: {
    arity: [1, 1],
    check(node) {
      if (typeof node.keepDims !== 'boolean') fail(node.name, 'keepDims', 'must be true or false');
    },
    params: none,
    shape(node, [x]) {
      const [n, c] = rank4(node, x!);
      return node.keepDims ? [n, c, 1, 1] : [n, c];
    },
    macs: free,
  },
  flatten: {
    arity: [1, 1],
    check: nothing,
    params: none,
    shape(_node, [s]) {
      const rest = s!.slice(1);
      return [s![0] ?? null, rest.some((d) => d === null) ? null : rest.reduce<number>((a, d) => a * (d as number), 1)];
    },
    macs: free,
  },
  dense: {
    arity: [1, 1],
    check(node) {
      positive(node, 'inFeatures', node.inFeatures);
      positive(node, 'outFeatures', node.outFeatures);
    },
    params: (node) => ({ weight: [node.outFeatures, node.inFeatures], bias: [node.outFeatures] }),
    shape(node, [s]) {
      if (s!.length !== 2) fail(node.name, 'inputs[0]', `needs [N, features], got rank ${s!.length}; flatten or pool first`);
      channelsMatch(node, node.inFeatures, s![1] ?? null, 'inFeatures');
      return [s![0] ?? null, node.outFeatures];
    },
    macs: (node, [x]) => (x![0] ?? 1) * node.inFeatures * node.outFeatures,
  },
  dropout: { arity: [1, 1], check: (node) => rate(node, node.rate), params: none, shape: passThrough, macs: free },
  dropPath: { arity: [1, 1], check: (node) => rate(node, node.rate), params: none, shape: passThrough, macs: free },
  maxPool: {
    arity: [1, 1],
    check(node) {
      pair(node, 'kernel', node.kernel);
      pair(node, 'stride', node.stride);
      padding(node, node.padding);
    },
    params: none,
    shape(node, [x]) {
      const [n, c, h, w] = rank4(node, x!);
      return [
        n,
        c,
        spatial((v) => outSizeFor(node.padding, v, node.kernel[0], node.stride[0], 1, 0), h),
        spatial((v) => outSizeFor(node.padding, v, node.kernel[1], node.stride[1], 1, 1), w),
      ];
    },
    macs: free,
  },
  resize: {
    arity: [1, 2],
    check(node) {
      if (node.mode !== 'nearest' && node.mode !== 'bilinear') fail(node.name, 'mode', `"${node.mode}" is not nearest or bilinear`);
      if (node.inputs.length === 1 && !(typeof node.scale === 'number' && node.scale > 0))
        fail(node.name, 'scale', 'needs a positive scale, or a second input whose size to match');
    },
    params: none,
    shape(node, [x, like]) {
      const [n, c, h, w] = rank4(node, x!);
      if (like) {
        const [, , th, tw] = rank4(node, like, 1);
        return [n, c, th, tw];
      }
      const scale = node.scale!;
      return [n, c, spatial((v) => Math.floor(v * scale), h), spatial((v) => Math.floor(v * scale), w)];
    },
    macs: free,
  },
  concat: {
    arity: [2, Infinity],
    check(node) {
      if (!isNonNegInt(node.axis)) fail(node.name, 'axis', `must be a non-negative integer, got ${JSON.stringify(node.axis)}`);
    },
    params: none,
    shape(node, parts) {
      const first = parts[0]!;
      const axis = node.axis;
      let total: number | null = 0;
      parts.forEach((s, i) => {
        if (s.length !== first.length || s.some((d, k) => k !== axis && d !== null && first[k] !== null && d !== first[k]))
          fail(node.name, `inputs[${i}]`, `shape [${s.join(', ')}] cannot be concatenated with [${first.join(', ')}] on axis ${axis}`);
        total = total === null || s[axis] === null ? null : total + (s[axis] as number);
      });
      const out = [...first];
      out[axis] = total;
      return out;
    },
    macs: free,
  },
  weightedSum: {
    arity: [2, Infinity],
    check(node) {
      if (node.normalization !== 'fast' && node.normalization !== 'softmax') fail(node.name, 'normalization', `"${node.normalization}" is not fast or softmax`);
      if (!(node.epsilon >= 0)) fail(node.name, 'epsilon', `must be >= 0, got ${JSON.stringify(node.epsilon)}`);
    },
    params: (node) => ({ weight: [node.inputs.length] }),
    shape: sameShapes,
    macs: free,
  },
};

/** The record of a node's kind (typed for that node). */
export function nodeRule<N extends GraphNode>(node: N): NodeKindRule<N> {
  return NODE_RULES[node.kind] as unknown as NodeKindRule<N>;
}

/** Every node kind, in the order of the records. */
export const NODE_KINDS = Object.keys(NODE_RULES) as readonly NodeKind[];
