/**
 * Training an EfficientDet as effdet does (`DetectionLoss` over `AnchorLabeler` targets): per level, a sigmoid focal
 * loss (alpha 0.25, gamma 1.5) on the class outputs against one-hot anchor targets, and a Huber loss (delta 0.1,
 * weighted 50) on the box outputs of positive anchors, both normalised by the batch's positive anchors + 1. The loss
 * is data (core's LossSpec); the targets are tensors in the outputs' own layout ([N, A*C, H, W], [N, A*4, H, W]).
 */
import { type Graph, InvalidSpecError, type LossSpec, readDetectionMetadata, type Tensor } from '@effnet/core';
import { type AnchorLabelerOptions, labelAnchors } from './anchor-labeler.js';
import type { Anchors } from './anchors.js';
import type { Box } from './coco-dataset.js';

export interface DetectionLossOptions {
  /** Focal loss alpha and gamma (effdet: 0.25, 1.5). */
  alpha?: number;
  gamma?: number;
  /** Huber delta (effdet: 0.1) and the box loss's weight against the class loss (effdet: 50). */
  delta?: number;
  boxLossWeight?: number;
}

/** The target tensors' names for a level. */
export const detectionTargetNames = (level: number) => ({ cls: `cls_targets_P${level}`, box: `box_targets_P${level}`, mask: `box_mask_P${level}` });
export const NUM_POSITIVES = 'num_positives';
export const NUM_POSITIVES_X4 = 'num_positives_x4';

/** effdet's DetectionLoss as a LossSpec over a detector graph's class_P* and box_P* outputs. */
export function detectionLoss(graph: Graph, o: DetectionLossOptions = {}): LossSpec {
  const m = readDetectionMetadata(graph);
  const spec: LossSpec = {
    targets: [
      { name: NUM_POSITIVES, dtype: 'float32' },
      { name: NUM_POSITIVES_X4, dtype: 'float32' },
    ],
    terms: [],
  };
  for (let level = m.minLevel; level <= m.maxLevel; level++) {
    const t = detectionTargetNames(level);
    spec.targets.push({ name: t.cls, dtype: 'float32' }, { name: t.box, dtype: 'float32' }, { name: t.mask, dtype: 'float32' });
    spec.terms.push(
      { kind: 'sigmoidFocal', output: `class_P${level}`, target: t.cls, normalizer: NUM_POSITIVES, alpha: o.alpha ?? 0.25, gamma: o.gamma ?? 1.5, ignoreValue: -2 },
      { kind: 'huber', output: `box_P${level}`, target: t.box, mask: t.mask, normalizer: NUM_POSITIVES_X4, delta: o.delta ?? 0.1, weight: o.boxLossWeight ?? 50 },
    );
  }
  return spec;
}

/** Ground truth of one image in model-input pixels: boxes [x1, y1, x2, y2] and 0-based classes. */
export interface ImageTargets {
  boxes: readonly Box[];
  classes: readonly number[];
}

/**
 * The loss's target tensors for a batch: each image labelled against the anchors (effdet's AnchorLabeler), then laid
 * out as the outputs are: class target [N, A*C, H, W] one-hot at channel a*C + c of a positive anchor (every channel
 * -2 for an ignored one), box target [N, A*4, H, W] with its mask (box target != 0, as effdet's), and the
 * normalisers: positives over the batch + 1, and 4 times that.
 */
export function detectionTargets(anchors: Anchors, numClasses: number, images: readonly ImageTargets[], o: AnchorLabelerOptions = {}): Record<string, Tensor> {
  const n = images.length;
  const A = anchors.anchorsPerLocation;
  const out: Record<string, Tensor> = {};
  const labelled = images.map((im) => {
    if (im.boxes.length !== im.classes.length) throw new InvalidSpecError('boxes', im.boxes.length, `one class per box (${im.classes.length} classes)`);
    for (const c of im.classes) if (!(Number.isInteger(c) && c < numClasses)) throw new InvalidSpecError('class', c, `a class index below ${numClasses} (negative: padding)`);
    return labelAnchors(anchors, im.boxes.flat(), im.classes, o);
  });
  anchors.levels.forEach((lv, li) => {
    const { height: H, width: W } = lv;
    const plane = H * W;
    const cls = new Float32Array(n * A * numClasses * plane);
    const box = new Float32Array(n * A * 4 * plane);
    const mask = new Float32Array(n * A * 4 * plane);
    labelled.forEach((t, b) => {
      const ct = t.classTargets[li]!; // [H, W, A]
      const bt = t.boxTargets[li]!; // [H, W, A * 4]
      const clsBase = b * A * numClasses * plane;
      const boxBase = b * A * 4 * plane;
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const p = y * W + x;
          for (let a = 0; a < A; a++) {
            const c = ct[p * A + a]!;
            if (c >= 0) cls[clsBase + (a * numClasses + c) * plane + p] = 1;
            else if (c === -2) for (let k = 0; k < numClasses; k++) cls[clsBase + (a * numClasses + k) * plane + p] = -2;
            for (let j = 0; j < 4; j++) {
              const v = bt[p * A * 4 + a * 4 + j]!;
              box[boxBase + (a * 4 + j) * plane + p] = v;
              if (v !== 0) mask[boxBase + (a * 4 + j) * plane + p] = 1;
            }
          }
        }
    });
    const names = detectionTargetNames(lv.level);
    out[names.cls] = { dtype: 'float32', shape: [n, A * numClasses, H, W], data: cls };
    out[names.box] = { dtype: 'float32', shape: [n, A * 4, H, W], data: box };
    out[names.mask] = { dtype: 'float32', shape: [n, A * 4, H, W], data: mask };
  });
  const positives = labelled.reduce((s, t) => s + t.numPositives, 0) + 1;
  out[NUM_POSITIVES] = { dtype: 'float32', shape: [], data: Float32Array.of(positives) };
  out[NUM_POSITIVES_X4] = { dtype: 'float32', shape: [], data: Float32Array.of(positives * 4) };
  return out;
}
