import { GraphValidationError } from './errors.js';
import { ACTIVATION_FNS, assertNever, GRAPH_FORMAT, type Graph, type GraphNode, NODE_KINDS, type Padding, type ParamSpec } from './graph.js';
import { inferShapes } from './shapes.js';

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

function arity(node: GraphNode, min: number, max = min): void {
  const n = node.inputs.length;
  if (n < min || n > max) fail(node.name, 'inputs', `takes ${min === max ? min : max === Infinity ? `at least ${min}` : `${min} to ${max}`} input(s), got ${n}`);
}

function positive(node: GraphNode, field: string, v: unknown): void {
  if (!isPosInt(v)) fail(node.name, field, `must be a positive integer, got ${JSON.stringify(v)}`);
}

function rate(node: GraphNode, v: unknown): void {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) fail(node.name, 'rate', `must be in [0, 1), got ${JSON.stringify(v)}`);
}

/** The parameter shapes a node reads, by role. */
export function expectedParamShapes(node: GraphNode): Record<string, number[]> {
  switch (node.kind) {
    case 'conv2d':
      return { weight: [node.outChannels, node.inChannels / node.groups, ...node.kernel], bias: [node.outChannels] };
    case 'convTranspose':
      return { weight: [node.inChannels, node.outChannels / node.groups, ...node.kernel], bias: [node.outChannels] };
    case 'batchNorm':
      return { weight: [node.channels], bias: [node.channels], runningMean: [node.channels], runningVar: [node.channels] };
    case 'dense':
      return { weight: [node.outFeatures, node.inFeatures], bias: [node.outFeatures] };
    case 'weightedSum':
      return { weight: [node.inputs.length] };
    case 'activation':
    case 'softmax':
    case 'add':
    case 'mul':
    case 'globalAvgPool':
    case 'flatten':
    case 'dropout':
    case 'dropPath':
    case 'maxPool':
    case 'resize':
    case 'concat':
      return {};
    default:
      return assertNever(node, 'node kind');
  }
}

function checkFields(node: GraphNode): void {
  switch (node.kind) {
    case 'conv2d':
      arity(node, 1);
      positive(node, 'inChannels', node.inChannels);
      positive(node, 'outChannels', node.outChannels);
      positive(node, 'groups', node.groups);
      pair(node, 'kernel', node.kernel);
      pair(node, 'stride', node.stride);
      pair(node, 'dilation', node.dilation);
      padding(node, node.padding);
      if (node.inChannels % node.groups || node.outChannels % node.groups)
        fail(node.name, 'groups', `${node.groups} does not divide inChannels ${node.inChannels} and outChannels ${node.outChannels}`);
      return;
    case 'convTranspose':
      arity(node, 1);
      positive(node, 'inChannels', node.inChannels);
      positive(node, 'outChannels', node.outChannels);
      positive(node, 'groups', node.groups);
      pair(node, 'kernel', node.kernel);
      pair(node, 'stride', node.stride);
      quad(node, 'pads', node.pads);
      pair(node, 'outputPadding', node.outputPadding, isNonNegInt);
      if (node.inChannels % node.groups || node.outChannels % node.groups)
        fail(node.name, 'groups', `${node.groups} does not divide inChannels ${node.inChannels} and outChannels ${node.outChannels}`);
      return;
    case 'batchNorm':
      arity(node, 1);
      positive(node, 'channels', node.channels);
      if (!(node.eps > 0)) fail(node.name, 'eps', `must be positive, got ${JSON.stringify(node.eps)}`);
      if (!(node.momentum > 0 && node.momentum <= 1)) fail(node.name, 'momentum', `must be in (0, 1], got ${JSON.stringify(node.momentum)}`);
      return;
    case 'activation':
      arity(node, 1);
      if (!ACTIVATION_FNS.includes(node.fn)) fail(node.name, 'fn', `"${node.fn}" is not one of ${ACTIVATION_FNS.join(', ')}`);
      return;
    case 'softmax':
      arity(node, 1);
      if (!isNonNegInt(node.axis)) fail(node.name, 'axis', `must be a non-negative integer, got ${JSON.stringify(node.axis)}`);
      return;
    case 'add':
      return arity(node, 2, Infinity);
    case 'weightedSum':
      arity(node, 2, Infinity);
      if (node.normalization !== 'fast' && node.normalization !== 'softmax') fail(node.name, 'normalization', `"${node.normalization}" is not fast or softmax`);
      if (!(node.epsilon >= 0)) fail(node.name, 'epsilon', `must be >= 0, got ${JSON.stringify(node.epsilon)}`);
      return;
    case 'mul':
      return arity(node, 2);
    case 'globalAvgPool':
      arity(node, 1);
      if (typeof node.keepDims !== 'boolean') fail(node.name, 'keepDims', 'must be true or false');
      return;
    case 'flatten':
      return arity(node, 1);
    case 'dense':
      arity(node, 1);
      positive(node, 'inFeatures', node.inFeatures);
      positive(node, 'outFeatures', node.outFeatures);
      return;
    case 'dropout':
    case 'dropPath':
      arity(node, 1);
      return rate(node, node.rate);
    case 'maxPool':
      arity(node, 1);
      pair(node, 'kernel', node.kernel);
      pair(node, 'stride', node.stride);
      return padding(node, node.padding);
    case 'resize':
      arity(node, 1, 2);
      if (node.mode !== 'nearest' && node.mode !== 'bilinear') fail(node.name, 'mode', `"${node.mode}" is not nearest or bilinear`);
      if (node.inputs.length === 1 && !(typeof node.scale === 'number' && node.scale > 0))
        fail(node.name, 'scale', 'needs a positive scale, or a second input whose size to match');
      return;
    case 'concat':
      arity(node, 2, Infinity);
      if (!isNonNegInt(node.axis)) fail(node.name, 'axis', `must be a non-negative integer, got ${JSON.stringify(node.axis)}`);
      return;
    default:
      assertNever(node, 'node kind');
  }
}

/**
 * Checks a graph end to end: structure, per-kind fields, parameter declarations and shapes, wiring and channel
 * agreement, outputs and endpoints. Throws GraphValidationError naming the node and field at fault.
 */
export function validateGraph(graph: Graph): void {
  if (!graph || typeof graph !== 'object') fail('graph', 'graph', 'is not an object');
  if (graph.format !== GRAPH_FORMAT) fail('graph', 'format', `expected "${GRAPH_FORMAT}", got ${JSON.stringify(graph.format)}`);
  for (const f of ['inputs', 'nodes', 'outputs', 'endpoints', 'parameters'] as const)
    if (!Array.isArray(graph[f])) fail('graph', f, 'must be an array');
  const params = new Map<string, ParamSpec>();
  for (const p of graph.parameters) {
    if (typeof p?.name !== 'string' || !p.name) fail('graph', 'parameters', `entry without a name: ${JSON.stringify(p)}`);
    if (params.has(p.name)) fail('graph', `parameters.${p.name}`, 'declared twice');
    if (!Array.isArray(p.shape) || !p.shape.every(isPosInt)) fail('graph', `parameters.${p.name}.shape`, `must be positive integers, got ${JSON.stringify(p.shape)}`);
    if (p.shared !== undefined && typeof p.shared !== 'boolean') fail('graph', `parameters.${p.name}.shared`, `must be true, false or absent, got ${JSON.stringify(p.shared)}`);
    params.set(p.name, p);
  }
  const names = new Set<string>();
  for (const inp of graph.inputs) {
    if (typeof inp?.name !== 'string' || !inp.name) fail('graph', 'inputs', 'an input without a name');
    if (names.has(inp.name)) fail(inp.name, 'name', 'used twice');
    if (!isPosInt(inp.channels)) fail(inp.name, 'channels', `must be a positive integer, got ${JSON.stringify(inp.channels)}`);
    for (const f of ['height', 'width'] as const)
      if (inp[f] !== null && !isPosInt(inp[f])) fail(inp.name, f, `must be a positive integer or null (dynamic), got ${JSON.stringify(inp[f])}`);
    names.add(inp.name);
  }
  const used = new Set<string>();
  graph.nodes.forEach((node, i) => {
    const label = typeof node?.name === 'string' && node.name ? node.name : `nodes[${i}]`;
    if (typeof node?.name !== 'string' || !node.name) fail(label, 'name', 'missing');
    if (names.has(node.name)) fail(node.name, 'name', 'used twice');
    if (!NODE_KINDS.includes(node.kind)) fail(node.name, 'kind', `"${(node as { kind: unknown }).kind}" is not one of ${NODE_KINDS.join(', ')}`);
    if (!Array.isArray(node.inputs) || !node.inputs.every((x) => typeof x === 'string')) fail(node.name, 'inputs', 'must be an array of tensor names');
    for (const inp of node.inputs) if (!names.has(inp)) fail(node.name, 'inputs', `"${inp}" is not a graph input or an earlier node`);
    checkFields(node);
    const expected = expectedParamShapes(node);
    const given = 'params' in node ? (node.params as Record<string, string | undefined>) : {};
    for (const role of Object.keys(expected)) {
      const pname = given[role];
      if (pname === undefined) {
        if (role === 'bias') continue;
        fail(node.name, `params.${role}`, 'missing');
      }
      const p = params.get(pname);
      if (!p) fail(node.name, `params.${role}`, `"${pname}" is not declared in graph.parameters`);
      if (used.has(pname) && !p.shared)
        fail(node.name, `params.${role}`, `"${pname}" is already read by another node (declare it shared: true if several nodes read it on purpose)`);
      used.add(pname);
      const shape = expected[role]!;
      if (p.shape.length !== shape.length || p.shape.some((d, k) => d !== shape[k]))
        fail(node.name, `params.${role}`, `"${pname}" has shape [${p.shape.join(', ')}], the node needs [${shape.join(', ')}]`);
    }
    names.add(node.name);
  });
  for (const p of params.keys()) if (!used.has(p)) fail('graph', `parameters.${p}`, 'declared but read by no node');
  if (graph.outputs.length === 0) fail('graph', 'outputs', 'at least one output is needed');
  for (const o of graph.outputs) if (!names.has(o)) fail('graph', 'outputs', `"${o}" is not a node or input`);
  const shapes = inferShapes(graph);
  for (const e of graph.endpoints) {
    const s = shapes.get(e.node);
    if (!s) fail('graph', `endpoints.${e.name}`, `node "${e.node}" does not exist`);
    if (s[1] !== e.channels) fail('graph', `endpoints.${e.name}`, `declares ${e.channels} channels, node "${e.node}" has ${s[1]}`);
  }
}
