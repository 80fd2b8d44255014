import { GraphValidationError } from './errors.js';
import { GRAPH_FORMAT, type Graph, type GraphNode, type ParamSpec } from './graph.js';
import { NODE_KINDS, nodeRule } from './node-kinds.js';
import { inferShapes } from './shapes.js';

const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

function fail(node: string, field: string, reason: string): never {
  throw new GraphValidationError(node, field, reason);
}

/** The parameter shapes a node reads, by role (its kind's record in node-kinds.ts). */
export function expectedParamShapes(node: GraphNode): Record<string, number[]> {
  return nodeRule(node).params(node);
}

/** Input count and the node's own fields, by its kind's record. */
function checkFields(node: GraphNode): void {
  const [min, max] = nodeRule(node).arity;
  const n = node.inputs.length;
  if (n < min || n > max) fail(node.name, 'inputs', `takes ${min === max ? min : max === Infinity ? `at least ${min}` : `${min} to ${max}`} input(s), got ${n}`);
  nodeRule(node).check(node);
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
