import { InvalidSpecError } from './errors.js';
import type { Graph, GraphNode } from './graph.js';
import { nodeRule } from './node-kinds.js';
import { numel } from './tensor.js';
import { inferShapes, type Shape } from './shapes.js';

/** Number of trainable parameters (what `sum(p.numel() for p in model.parameters())` counts; BN buffers excluded). */
export function countParameters(graph: Graph): number {
  let n = 0;
  for (const p of graph.parameters) if (p.trainable) n += numel(p.shape);
  return n;
}


export interface NodeReport {
  name: string;
  kind: GraphNode['kind'];
  shape: number[];
  macs: number;
}

export interface GraphAnalysis {
  /** Trainable parameters. */
  params: number;
  /** Conv + linear multiply-accumulates for one image at the analysed size. */
  macs: number;
  height: number;
  width: number;
  outputs: Record<string, number[]>;
  endpoints: { name: string; node: string; stride: number; channels: number; shape: number[] }[];
  nodes: NodeReport[];
}

/**
 * Shapes, parameters and MACs of a graph for one image of height x width (default: the graph's static input size).
 */
export function analyzeGraph(graph: Graph, size: { height?: number; width?: number } = {}): GraphAnalysis {
  const input = graph.inputs[0];
  const height = size.height ?? input?.height ?? undefined;
  const width = size.width ?? input?.width ?? undefined;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height! < 1 || width! < 1)
    throw new InvalidSpecError('size', { height, width }, 'positive integers; the graph has a dynamic input size, so pass one');
  const shapes = inferShapes(graph, { batch: 1, height: height!, width: width! });
  const concrete = (name: string) => shapes.get(name)!.map((d) => d as number);
  const nodes: NodeReport[] = graph.nodes.map((node) => {
    const macs = nodeRule(node).macs(node, node.inputs.map((i) => shapes.get(i)!), shapes.get(node.name)!);
    return { name: node.name, kind: node.kind, shape: concrete(node.name), macs };
  });
  return {
    params: countParameters(graph),
    macs: nodes.reduce((a, n) => a + n.macs, 0),
    height: height!,
    width: width!,
    outputs: Object.fromEntries(graph.outputs.map((o) => [o, concrete(o)])),
    endpoints: graph.endpoints.map((e) => ({ ...e, shape: concrete(e.node) })),
    nodes,
  };
}
