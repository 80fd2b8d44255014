import { InvalidSpecError } from '@effnet/core';

/** One of the k best classes of a row. */
export interface TopKEntry {
  index: number;
  /** The class name, when labels were given. */
  label?: string;
  prob: number;
}

function rowsOf(length: number, numClasses: number, what: string): number {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new InvalidSpecError('numClasses', numClasses, 'a positive integer');
  if (length % numClasses !== 0) {
    throw new InvalidSpecError(what, { length, numClasses }, `a whole number of rows of numClasses values (${length} is not a multiple of ${numClasses})`);
  }
  return length / numClasses;
}

/**
 * Softmax over each row of `numClasses` logits (a flat [N, numClasses] array), computed stably (max subtracted) in
 * double precision and stored as float32.
 */
export function softmax(logits: Float32Array, numClasses: number): Float32Array {
  const rows = rowsOf(logits.length, numClasses, 'logits');
  const out = new Float32Array(logits.length);
  const e = new Float64Array(numClasses);
  for (let r = 0; r < rows; r++) {
    const base = r * numClasses;
    let max = -Infinity;
    for (let i = 0; i < numClasses; i++) max = Math.max(max, logits[base + i]!);
    let sum = 0;
    for (let i = 0; i < numClasses; i++) {
      // All -Infinity (or +Infinity) rows: subtracting the max would give NaN; treat them as equal logits.
      const v = Number.isFinite(max) ? Math.exp(logits[base + i]! - max) : logits[base + i] === max ? 1 : 0;
      e[i] = v;
      sum += v;
    }
    for (let i = 0; i < numClasses; i++) out[base + i] = e[i]! / sum;
  }
  return out;
}

export interface TopKOptions {
  /** Values per row (default: labels.length, else the whole array is one row). */
  numClasses?: number;
  /** Class names in index order; each entry then carries its `label`. */
  labels?: readonly string[];
}

/**
 * The k largest values of each row of a flat [N, numClasses] array (probabilities or logits), best first; ties go
 * to the lower index, NaN ranks last. k larger than numClasses gives every class.
 */
export function topK(probs: Float32Array, k: number, options: TopKOptions = {}): TopKEntry[][] {
  const numClasses = options.numClasses ?? options.labels?.length ?? probs.length;
  const rows = rowsOf(probs.length, numClasses, 'probs');
  if (!Number.isInteger(k) || k < 1) throw new InvalidSpecError('k', k, 'a positive integer');
  const labels = options.labels;
  if (labels && labels.length !== numClasses) {
    throw new InvalidSpecError('labels', `${labels.length} names`, `one name per class: ${numClasses} (numClasses)`);
  }
  const take = Math.min(k, numClasses);
  const result: TopKEntry[][] = [];
  const key = (v: number) => (Number.isNaN(v) ? -Infinity : v);
  for (let r = 0; r < rows; r++) {
    const base = r * numClasses;
    // Keep the best `take` indices in a small sorted list: O(C * k), fine for k << C.
    const best: number[] = [];
    for (let i = 0; i < numClasses; i++) {
      const v = key(probs[base + i]!);
      if (best.length === take && !(v > key(probs[base + best[take - 1]!]!))) continue;
      let at = best.length === take ? take - 1 : best.length;
      while (at > 0 && v > key(probs[base + best[at - 1]!]!)) {
        best[at] = best[at - 1]!;
        at--;
      }
      best[at] = i;
    }
    result.push(best.map((index) => (labels ? { index, label: labels[index]!, prob: probs[base + index]! } : { index, prob: probs[base + index]! })));
  }
  return result;
}
