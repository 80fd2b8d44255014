import { WeightMismatchError } from '../errors.js';
import type { Graph } from '../graph.js';
import { float32Tensor, type Tensor, type TensorMap, toFloat32 } from '../tensor.js';

/** Tensors a state_dict may carry that no graph reads (PyTorch's BatchNorm step counter). */
export const IGNORED_WEIGHTS = /(^|\.)num_batches_tracked$/;

/**
 * Checks weights against the graph's declared parameters and returns them as float32 in declaration order. Every
 * missing, unexpected and mis-shaped tensor is reported at once, by name, with expected and actual shapes.
 */
export function bindWeights(graph: Graph, weights: TensorMap, ignore: RegExp = IGNORED_WEIGHTS): TensorMap {
  const missing: string[] = [];
  const misshaped: { name: string; expected: number[]; actual: number[] }[] = [];
  const out: TensorMap = new Map();
  const declared = new Set<string>();
  for (const p of graph.parameters) {
    declared.add(p.name);
    const t = weights.get(p.name);
    if (!t) {
      missing.push(p.name);
      continue;
    }
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      misshaped.push({ name: p.name, expected: p.shape, actual: t.shape });
      continue;
    }
    out.set(p.name, t.dtype === 'float32' ? t : float32Tensor([...t.shape], toFloat32(t)));
  }
  const unexpected = [...weights.keys()].filter((k) => !declared.has(k) && !ignore.test(k));
  if (missing.length || unexpected.length || misshaped.length) throw new WeightMismatchError(missing, unexpected, misshaped);
  return out;
}

/** The float32 data of a bound weight (bindWeights guarantees float32). */
export function weightData(weights: TensorMap, name: string): Float32Array {
  const t: Tensor | undefined = weights.get(name);
  if (!t) throw new Error(`weight "${name}" is not bound`);
  return t.data as Float32Array;
}
