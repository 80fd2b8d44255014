import { InvalidSpecError } from './errors.js';
import type { Graph } from './graph.js';

/**
 * Losses as data: a weighted sum of terms, each reading one graph output and one or more target tensors fed with the
 * batch. A backend differentiates the graph into these; tasks say which loss they train with (classification:
 * softmax cross-entropy; detection: focal + Huber over the per-level class/box outputs; segmentation: per-pixel
 * cross-entropy with an ignored label, Dice).
 */

/** A tensor fed with each batch besides the images (labels, per-anchor targets, ...). Its dims come with the batch. */
export interface LossTarget {
  name: string;
  dtype: 'int64' | 'float32';
}

/**
 * One term of the total loss. Every term is a mean (or a normalised sum, for focal and Huber) over the batch, so a
 * term's `weight` scales its share of the total.
 */
export type LossTerm =
  /**
   * PyTorch's CrossEntropyLoss: `output` [N, C] or [N, C, H, W] logits, `target` int64 class indices [N] or [N, H, W];
   * label smoothing spreads `labelSmoothing` over the classes; positions labelled `ignoreIndex` count for nothing and
   * the mean is over the others.
   */
  | { kind: 'softmaxCrossEntropy'; output: string; target: string; labelSmoothing?: number; ignoreIndex?: number; weight?: number }
  /**
   * effdet's focal loss (new_focal_loss, no label smoothing) on logits against float {0, 1} targets of the same
   * shape: alpha-balanced, (1 - p_t)^gamma-modulated binary cross-entropy, summed and divided by the scalar float32
   * target `normalizer` (effdet: number of positive anchors + 1). Elements whose target is `ignoreValue` count for
   * nothing (effdet marks every class of an ignored anchor -2). Defaults: alpha 0.25, gamma 1.5, ignoreValue -2.
   */
  | { kind: 'sigmoidFocal'; output: string; target: string; normalizer: string; alpha?: number; gamma?: number; ignoreValue?: number; weight?: number }
  /**
   * effdet's Huber loss (delta, default 0.1) of `output` against `target`, weighted by the float `mask` (same shape;
   * effdet: target != 0), summed and divided by the scalar `normalizer` (effdet: (positives + 1) * 4). effdet weights
   * the box loss 50 against the class loss: that is this term's `weight`.
   */
  | { kind: 'huber'; output: string; target: string; mask: string; normalizer: string; delta?: number; weight?: number }
  /**
   * segmentation_models_pytorch's multiclass DiceLoss (from_logits): softmax of `output` [N, C, H, W] against int64
   * labels [N, H, W], per class over the whole batch 1 - (I + smooth) / max((sum p + sum t) / 2 + smooth, eps), zero
   * for classes absent from the batch, mean over all C classes; `ignoreIndex` pixels masked out. Defaults: smooth 0,
   * eps 1e-7.
   */
  | { kind: 'dice'; output: string; target: string; ignoreIndex?: number; smooth?: number; eps?: number; weight?: number };

export type LossKind = LossTerm['kind'];

export interface LossSpec {
  targets: LossTarget[];
  terms: LossTerm[];
}

/** Classification: cross-entropy of the first output against int64 `labels` [N]. */
export function classificationLoss(graph: Graph, o: { labelSmoothing?: number } = {}): LossSpec {
  const smoothing = o.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) throw new InvalidSpecError('labelSmoothing', smoothing, 'a number in [0, 1)');
  return {
    targets: [{ name: 'labels', dtype: 'int64' }],
    terms: [{ kind: 'softmaxCrossEntropy', output: graph.outputs[0]!, target: 'labels', labelSmoothing: smoothing }],
  };
}

/** Checks that a loss reads outputs the graph has and targets it declares; names what is wrong. */
export function checkLoss(graph: Graph, loss: LossSpec): void {
  if (!loss.terms.length) throw new InvalidSpecError('loss.terms', loss.terms, 'at least one loss term');
  const targets = new Set(loss.targets.map((t) => t.name));
  const inputs = new Set(graph.inputs.map((i) => i.name));
  for (const t of loss.targets) if (inputs.has(t.name)) throw new InvalidSpecError(`loss.targets.${t.name}`, t.name, 'a name that is not a graph input');
  loss.terms.forEach((term, i) => {
    if (!graph.outputs.includes(term.output)) throw new InvalidSpecError(`loss.terms[${i}].output`, term.output, `one of the graph outputs (${graph.outputs.join(', ')})`);
    const reads = [term.target, ...('normalizer' in term ? [term.normalizer] : []), ...('mask' in term ? [term.mask] : [])];
    for (const r of reads) if (!targets.has(r)) throw new InvalidSpecError(`loss.terms[${i}]`, r, `a target declared in loss.targets (${[...targets].join(', ')})`);
  });
}
