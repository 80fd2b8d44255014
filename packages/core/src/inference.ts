import type { Conv2dNode, Graph, GraphNode, ParamSpec } from './graph.js';
import { float32Tensor, type TensorMap } from './tensor.js';
import { validateGraph } from './validate.js';
import { weightData } from './weights/check.js';

export interface InferenceRewrites {
  /** Fold each BatchNorm into the conv before it (default true). */
  foldBatchNorm?: boolean;
  /** Drop dropout, drop-path and identity activations, which do nothing at inference (default true). */
  removeNoOps?: boolean;
  /** Drop nodes no output or endpoint depends on (a segmenter encoder's unused head), default true. */
  removeDeadNodes?: boolean;
}

/** The nodes that some output or endpoint depends on (graph inputs excluded). */
export function liveNodes(graph: Graph): Set<string> {
  const live = new Set<string>([...graph.outputs, ...graph.endpoints.map((e) => e.node)]);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (live.has(n.name)) for (const inp of n.inputs) live.add(inp);
  }
  for (const inp of graph.inputs) live.delete(inp.name);
  return live;
}

/**
 * Inference-time rewrites of a graph and its (bound, float32) weights. Returns a new graph and weight map; the
 * inputs are not modified. Outputs and endpoints keep their names' meaning: they are redirected to the tensor
 * that now carries their value.
 */
export function prepareForInference(graph: Graph, weights: TensorMap, o: InferenceRewrites = {}): { graph: Graph; weights: TensorMap } {
  const { foldBatchNorm = true, removeNoOps = true, removeDeadNodes = true } = o;
  const live = removeDeadNodes ? liveNodes(graph) : null;
  const alias = new Map<string, string>();
  const resolve = (n: string): string => {
    let x = n;
    while (alias.has(x)) x = alias.get(x)!;
    return x;
  };
  const consumers = new Map<string, number>();
  for (const n of graph.nodes) if (!live || live.has(n.name)) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const pinned = new Set([...graph.outputs, ...graph.endpoints.map((e) => e.node)]);

  const outWeights: TensorMap = new Map(weights);
  const params = new Map(graph.parameters.map((p) => [p.name, p]));
  const emitted = new Map<string, GraphNode>();

  for (const node of graph.nodes) {
    if (live && !live.has(node.name)) continue;
    const inputs = node.inputs.map(resolve);
    if (removeNoOps && (node.kind === 'dropout' || node.kind === 'dropPath' || (node.kind === 'activation' && node.fn === 'identity'))) {
      alias.set(node.name, inputs[0]!);
      continue;
    }
    if (foldBatchNorm && node.kind === 'batchNorm') {
      const src = emitted.get(inputs[0]!);
      if (src?.kind === 'conv2d' && consumers.get(src.name) === 1 && !pinned.has(src.name)) {
        emitted.set(src.name, foldInto(src, node, outWeights, params));
        alias.set(node.name, src.name);
        continue;
      }
    }
    emitted.set(node.name, { ...node, inputs } as GraphNode);
  }
  const finalNodes = [...emitted.values()];
  const used = new Set(finalNodes.flatMap((n) => ('params' in n ? Object.values(n.params as Record<string, string>) : [])));
  const parameters = [...params.values()].filter((p) => used.has(p.name));
  for (const k of [...outWeights.keys()]) if (!used.has(k)) outWeights.delete(k);
  const out: Graph = {
    ...graph,
    nodes: finalNodes,
    outputs: graph.outputs.map(resolve),
    endpoints: graph.endpoints.map((e) => ({ ...e, node: resolve(e.node) })),
    parameters,
    metadata: { ...graph.metadata, foldedBatchNorm: foldBatchNorm, removedNoOps: removeNoOps },
  };
  // Outputs must keep their public names: if an output was aliased away, keep an identity node under its name.
  out.outputs.forEach((resolved, i) => {
    const want = graph.outputs[i]!;
    if (resolved !== want) {
      out.nodes.push({ kind: 'activation', name: want, inputs: [resolved], fn: 'identity' });
      out.outputs[i] = want;
    }
  });
  validateGraph(out);
  return { graph: out, weights: outWeights };
}

/**
 * conv then BN == conv with w * g / sqrt(v + eps) and bias (b - m) * g / sqrt(v + eps) + beta. A conv whose weights
 * other nodes read too (a head shared across levels, each level with its own BN) gets its own folded copy, named
 * after the node, so the shared tensors stay as they were for the other readers.
 */
function foldInto(conv: Conv2dNode, bn: Extract<GraphNode, { kind: 'batchNorm' }>, weights: TensorMap, params: Map<string, ParamSpec>): Conv2dNode {
  const w = weightData(weights, conv.params.weight);
  const gamma = weightData(weights, bn.params.weight);
  const beta = weightData(weights, bn.params.bias);
  const mean = weightData(weights, bn.params.runningMean);
  const variance = weightData(weights, bn.params.runningVar);
  const oc = conv.outChannels;
  const per = w.length / oc;
  const nw = new Float32Array(w.length);
  const nb = new Float32Array(oc);
  const oldBias = conv.params.bias ? weightData(weights, conv.params.bias) : undefined;
  for (let c = 0; c < oc; c++) {
    const scale = gamma[c]! / Math.sqrt(variance[c]! + bn.eps);
    for (let k = 0; k < per; k++) nw[c * per + k] = w[c * per + k]! * scale;
    nb[c] = ((oldBias?.[c] ?? 0) - mean[c]!) * scale + beta[c]!;
  }
  const spec = params.get(conv.params.weight)!;
  const shared = spec.shared === true || (conv.params.bias !== undefined && params.get(conv.params.bias)?.shared === true);
  const weightName = shared ? freshName(`${conv.name}.weight`, params) : conv.params.weight;
  const biasName = shared || !conv.params.bias ? freshName(`${conv.name}.bias`, params) : conv.params.bias;
  weights.set(weightName, float32Tensor([...spec.shape], nw));
  weights.set(biasName, float32Tensor([oc], nb));
  if (shared) params.set(weightName, { name: weightName, shape: [...spec.shape], trainable: true, init: spec.init });
  if (!params.has(biasName)) params.set(biasName, { name: biasName, shape: [oc], trainable: true, init: { kind: 'constant', value: 0 } });
  return { ...conv, params: { weight: weightName, bias: biasName } };
}

/** `name`, or `name` with a numeric suffix when a parameter of that name exists already. */
function freshName(name: string, params: Map<string, ParamSpec>): string {
  if (!params.has(name)) return name;
  let i = 1;
  while (params.has(`${name}_${i}`)) i++;
  return `${name}_${i}`;
}
