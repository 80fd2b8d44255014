import { GraphValidationError } from './errors.js';
import { assertNever, type Graph, type GraphNode } from './graph.js';
import { outSizeFor } from './padding.js';

/** A tensor shape; null is an unknown (dynamic) size. Feature maps are [N, C, H, W], vectors [N, C]. */
export type Shape = (number | null)[];

export interface ShapeOptions {
  batch?: number | null;
  /** Override the graph inputs' spatial size (required where the graph's input is dynamic and numbers are wanted). */
  height?: number | null;
  width?: number | null;
}

const spatial = (fn: (x: number) => number, x: number | null): number | null => (x === null ? null : fn(x));

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

function rank4(node: GraphNode, s: Shape, i = 0): [number | null, number, number | null, number | null] {
  if (s.length !== 4) throw new GraphValidationError(node.name, `inputs[${i}]`, `needs a [N, C, H, W] feature map, got rank ${s.length}`);
  return s as [number | null, number, number | null, number | null];
}

function channelsMatch(node: GraphNode, expected: number, actual: number | null, field = 'inChannels'): void {
  if (actual !== null && actual !== expected)
    throw new GraphValidationError(node.name, field, `expects ${expected} input channels, input "${node.inputs[0]}" has ${actual}`);
}

function sameShapes(node: GraphNode, shapes: Map<string, Shape>): Shape {
  const first = get(node, shapes, 0);
  for (let i = 1; i < node.inputs.length; i++) {
    const s = get(node, shapes, i);
    const ok = s.length === first.length && s.every((d, k) => d === null || first[k] === null || d === first[k]);
    if (!ok)
      throw new GraphValidationError(node.name, `inputs[${i}]`, `shape [${s.join(', ')}] of "${node.inputs[i]}" differs from [${first.join(', ')}] of "${node.inputs[0]}"`);
  }
  return first;
}

function nodeShape(node: GraphNode, shapes: Map<string, Shape>): Shape {
  switch (node.kind) {
    case 'conv2d': {
      const [n, c, h, w] = rank4(node, get(node, shapes, 0));
      channelsMatch(node, node.inChannels, c);
      return [
        n,
        node.outChannels,
        spatial((x) => outSizeFor(node.padding, x, node.kernel[0], node.stride[0], node.dilation[0], 0), h),
        spatial((x) => outSizeFor(node.padding, x, node.kernel[1], node.stride[1], node.dilation[1], 1), w),
      ];
    }
    case 'convTranspose': {
      const [n, c, h, w] = rank4(node, get(node, shapes, 0));
      channelsMatch(node, node.inChannels, c);
      const [t, l, b, r] = node.pads;
      return [
        n,
        node.outChannels,
        spatial((x) => (x - 1) * node.stride[0] + node.kernel[0] - t - b + node.outputPadding[0], h),
        spatial((x) => (x - 1) * node.stride[1] + node.kernel[1] - l - r + node.outputPadding[1], w),
      ];
    }
    case 'batchNorm': {
      const s = get(node, shapes, 0);
      channelsMatch(node, node.channels, s[1] ?? null, 'channels');
      return s;
    }
    case 'activation':
    case 'softmax':
    case 'dropout':
    case 'dropPath':
      return get(node, shapes, 0);
    case 'add':
    case 'weightedSum':
      return sameShapes(node, shapes);
    case 'mul': {
      const a = get(node, shapes, 0);
      const b = get(node, shapes, 1);
      const gate = b.length === a.length && b.length === 4 && b[2] === 1 && b[3] === 1;
      const ok = b.length === a.length && b.every((d, k) => d === null || a[k] === null || d === a[k] || (gate && k >= 2));
      if (!ok) throw new GraphValidationError(node.name, 'inputs[1]', `shape [${b.join(', ')}] does not broadcast to [${a.join(', ')}]`);
      return a;
    }
    case 'globalAvgPool': {
      const [n, c] = rank4(node, get(node, shapes, 0));
      return node.keepDims ? [n, c, 1, 1] : [n, c];
    }
    case 'flatten': {
      const s = get(node, shapes, 0);
      const rest = s.slice(1);
      return [s[0] ?? null, rest.some((d) => d === null) ? null : rest.reduce<number>((a, d) => a * (d as number), 1)];
    }
    case 'dense': {
      const s = get(node, shapes, 0);
      if (s.length !== 2) throw new GraphValidationError(node.name, 'inputs[0]', `needs [N, features], got rank ${s.length}; flatten or pool first`);
      channelsMatch(node, node.inFeatures, s[1] ?? null, 'inFeatures');
      return [s[0] ?? null, node.outFeatures];
    }
    case 'maxPool': {
      const [n, c, h, w] = rank4(node, get(node, shapes, 0));
      return [
        n,
        c,
        spatial((x) => outSizeFor(node.padding, x, node.kernel[0], node.stride[0], 1, 0), h),
        spatial((x) => outSizeFor(node.padding, x, node.kernel[1], node.stride[1], 1, 1), w),
      ];
    }
    case 'resize': {
      const [n, c, h, w] = rank4(node, get(node, shapes, 0));
      if (node.inputs.length > 1) {
        const [, , th, tw] = rank4(node, get(node, shapes, 1), 1);
        return [n, c, th, tw];
      }
      const scale = node.scale!;
      return [n, c, spatial((x) => Math.floor(x * scale), h), spatial((x) => Math.floor(x * scale), w)];
    }
    case 'concat': {
      const parts = node.inputs.map((_, i) => get(node, shapes, i));
      const first = parts[0]!;
      const axis = node.axis;
      let total: number | null = 0;
      parts.forEach((s, i) => {
        if (s.length !== first.length || s.some((d, k) => k !== axis && d !== null && first[k] !== null && d !== first[k]))
          throw new GraphValidationError(node.name, `inputs[${i}]`, `shape [${s.join(', ')}] cannot be concatenated with [${first.join(', ')}] on axis ${axis}`);
        total = total === null || s[axis] === null ? null : total + (s[axis] as number);
      });
      const out = [...first];
      out[axis] = total;
      return out;
    }
    default:
      return assertNever(node, 'node kind');
  }
}
