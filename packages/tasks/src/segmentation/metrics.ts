/** Segmentation metrics from one confusion matrix over every counted pixel (label 255 ignored). */
import { InvalidSpecError } from '@effnet/core';
import { IGNORE_INDEX } from './index-png.js';

export interface SegmentationMetrics {
  /** Mean IoU over the classes that occur in the labels or the predictions (union > 0). */
  mIoU: number;
  /** Correct pixels / counted pixels. */
  pixelAccuracy: number;
  /** IoU per class; null where the class is neither labelled nor predicted. */
  perClassIoU: (number | null)[];
  /** confusion[label][prediction], pixel counts. */
  confusion: number[][];
  pixels: number;
}

/** Accumulates label x prediction pixel counts; `add` per image, `metrics` at the end. */
export class SegmentationConfusion {
  readonly counts: Float64Array;

  constructor(readonly numClasses: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new InvalidSpecError('numClasses', numClasses, 'a positive integer');
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /** One image: labels (255 = ignore) and predicted classes, same length. */
  add(labels: ArrayLike<number>, predictions: ArrayLike<number>): void {
    if (labels.length !== predictions.length) throw new InvalidSpecError('predictions', predictions.length, `${labels.length} values, one per label`);
    const k = this.numClasses;
    for (let i = 0; i < labels.length; i++) {
      const t = labels[i]!;
      if (t === IGNORE_INDEX) continue;
      const p = predictions[i]!;
      if (t >= k || p >= k) throw new InvalidSpecError(t >= k ? 'label' : 'prediction', t >= k ? t : p, `a class index below ${k} (or 255 = ignore for labels)`);
      this.counts[t * k + p]!++;
    }
  }

  metrics(): SegmentationMetrics {
    const k = this.numClasses;
    const c = this.counts;
    let total = 0;
    let correct = 0;
    const rows = new Float64Array(k);
    const cols = new Float64Array(k);
    for (let t = 0; t < k; t++)
      for (let p = 0; p < k; p++) {
        const v = c[t * k + p]!;
        total += v;
        rows[t]! += v;
        cols[p]! += v;
        if (t === p) correct += v;
      }
    const perClassIoU = Array.from({ length: k }, (_, i) => {
      const union = rows[i]! + cols[i]! - c[i * k + i]!;
      return union > 0 ? c[i * k + i]! / union : null;
    });
    const present = perClassIoU.filter((v): v is number => v !== null);
    return {
      mIoU: present.length ? present.reduce((a, b) => a + b, 0) / present.length : Number.NaN,
      pixelAccuracy: total ? correct / total : Number.NaN,
      perClassIoU,
      confusion: Array.from({ length: k }, (_, t) => Array.from(c.subarray(t * k, (t + 1) * k))),
      pixels: total,
    };
  }
}
