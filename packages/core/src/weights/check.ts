import { firstNonFinite, InputError } from '../checks.js';
import { WeightMismatchError } from '../errors.js';
import type { Graph } from '../graph.js';
import { float32Tensor, type Tensor, type TensorMap, toFloat32 } from '../tensor.js';

/** Tensors a state_dict may carry that no graph reads (PyTorch's BatchNorm step counter). */
export const IGNORED_WEIGHTS = /(^|\.)num_batches_tracked$/;

/**
 * Recognises a foreign naming scheme among unexpected names and says which format to declare. `detector`: the graph
 * is an EfficientDet, so effdet's names are its own; `segmenter`: the graph is a segmenter, so smp's are.
 */
export function namingHint(unexpected: readonly string[], detector = false, segmenter = false): string | undefined {
  const share = (re: RegExp) => unexpected.filter((n) => re.test(n)).length / Math.max(1, unexpected.length);
  if (share(/^features\.\d+\./) > 0.5) return 'hint: these look like torchvision names; load them with weights format "torchvision"';
  if (share(/^(stem_conv|block\d+[a-z]_|top_conv|predictions)/) > 0.5) return 'hint: these look like Keras names; convert them with the zoo\'s Keras converter';
  if (!detector && share(/^(backbone|fpn|class_net|box_net)\./) > 0.5) return 'hint: these look like effdet (EfficientDet) names: a detector\'s weights; use a detector model such as tf_efficientdet_d0 with weights format "effdet"';
  if (!segmenter && share(/^(encoder|decoder|segmentation_head)\./) > 0.5)
    return 'hint: these look like smp (segmentation_models_pytorch) names: a segmenter\'s weights; use a segmenter model such as unet_efficientnet_b0 with weights format "smp"';
  if (share(/^(model\.|module\.)/) > 0.5) return 'hint: the names carry a "model."/"module." prefix (a wrapped or DataParallel model); strip it first';
  return undefined;
}

export interface BindOptions {
  /** Names a state_dict may carry that no graph reads. Default: PyTorch's num_batches_tracked. */
  ignore?: RegExp;
  /** Accept NaN and infinities in the weights (default false: an InputError naming the first such tensor). */
  allowNonFinite?: boolean;
}

/**
 * Checks weights against the graph's declared parameters and returns them as float32 in declaration order. Every
 * missing, unexpected and mis-shaped tensor is reported at once, by name, with expected and actual shapes; then
 * non-finite values are refused by tensor name unless allowed.
 */
export function bindWeights(graph: Graph, weights: TensorMap, o: BindOptions = {}): TensorMap {
  const ignore = o.ignore ?? IGNORED_WEIGHTS;
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
  if (missing.length || unexpected.length || misshaped.length) throw new WeightMismatchError(missing, unexpected, misshaped, namingHint(unexpected, graph.metadata.task === 'detection', graph.metadata.task === 'segmentation'));
  if (!o.allowNonFinite)
    for (const [name, t] of out) {
      const bad = firstNonFinite(t.data as Float32Array);
      if (bad >= 0) throw new InputError(`weight "${name}" holds ${(t.data as Float32Array)[bad]} at flat index ${bad}; the weight file is damaged or training diverged (allow non-finite weights explicitly with allowNonFinite / --allow-nan)`);
    }
  return out;
}

/** The float32 data of a bound weight (bindWeights guarantees float32). */
export function weightData(weights: TensorMap, name: string): Float32Array {
  const t: Tensor | undefined = weights.get(name);
  if (!t) throw new Error(`weight "${name}" is not bound`);
  return t.data as Float32Array;
}
