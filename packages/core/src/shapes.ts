import { GraphValidationError } from './errors.js';
import type { Graph, GraphNode } from './graph.js';
import { nodeRule, type Shape } from './node-kinds.js';

export type { Shape } from './node-kinds.js';


export interface ShapeOptions {
  batch?: number | null;
  /** Override the graph inputs' spatial size (required where the graph's input is dynamic and numbers are wanted). */
  height?: number | null;
  width?: number | null;
}

/**
 * Shape of every tensor in the graph, checking that channels and sizes agree as it goes. Throws
 * GraphValidationError naming the node at fault.
 */
export function inferShapes(graph: Graph, o: ShapeOptions = {}): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  const batch = o.batch === undefined ? null : o.batch;
  for (const inp of graph.inputs) {
    const h = o.height !== undefined ? o.height : inp.height;
    const w = o.width !== undefined ? o.width : inp.width;
    shapes.set(inp.name, [batch, inp.channels, h, w]);
  }
  for (const node of graph.nodes) shapes.set(node.name, nodeShape(node, shapes));
  return shapes;
}

function get(node: GraphNode, shapes: Map<string, Shape>, i: number): Shape {
  const name = node.inputs[i];
  const s = name === undefined ? undefined : shapes.get(name);
  if (!s) throw new GraphValidationError(node.name, `inputs[${i}]`, `"${name}" is not a graph input or an earlier node`);
  return s;
}

/** A node's output shape from its kind's record (node-kinds.ts). */
export function nodeShape(node: GraphNode, shapes: Map<string, Shape>): Shape {
  return nodeRule(node).shape(node, node.inputs.map((_, i) => get(node, shapes, i)));
}
