/** Comparing weights after training steps with PyTorch's (shared by the tfjs and ONNX Runtime parity tests). */
import type { TensorMap } from '@effnet/core';
import { maxDiff } from './peers.js';

export interface StepComparison {
  /** The tensor furthest from torch's, relative to its scale (max |w| + 1e-3). */
  worst: { name: string; diff: number; scale: number };
  /** Sum over every element of |ours - torch|, and of |torch after - before|: their ratio says how far the updates agree. */
  off: number;
  moved: number;
}

/** Our weights after the steps against torch's (same names), given the weights before; num_batches_tracked ignored. */
export function compareSteps(ours: TensorMap, torch: TensorMap, before: TensorMap): StepComparison {
  let worst = { name: '', diff: 0, scale: 0 };
  let off = 0;
  let moved = 0;
  for (const [name, t] of torch) {
    if (name.endsWith('num_batches_tracked')) continue;
    const a = ours.get(name)!.data as Float32Array;
    const b = t.data as Float32Array;
    const w0 = before.get(name)!.data as Float32Array;
    for (let i = 0; i < b.length; i++) {
      off += Math.abs(a[i]! - b[i]!);
      moved += Math.abs(b[i]! - w0[i]!);
    }
    const { diff, scale } = maxDiff(a, b);
    if (diff / (scale + 1e-3) > worst.diff / (worst.scale + 1e-3)) worst = { name, diff, scale };
  }
  return { worst, off, moved };
}
