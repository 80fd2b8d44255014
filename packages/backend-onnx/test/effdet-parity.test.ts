import { expect, it } from 'vitest';
import { describeDiffs, EFFDET_CASES, effdetParity } from '../../../testing/effdet.js';
import { describeWithPeers } from '../../../testing/peers.js';
import { OnnxBackend } from '../src/index.js';

/**
 * Raw EfficientDet heads against effdet (rwightman/efficientdet-pytorch) under Debian's PyTorch: random weights with
 * calibrated, perturbed BatchNorm statistics and perturbed fusion weights, saved under effdet's names; every
 * class_P* and box_P* output must equal effdet's (float64 forward) to max|diff| <= 1e-4 * max|value|.
 */
describeWithPeers(['torch', 'effdet'], 'ONNX backend vs effdet raw outputs', () => {
  const backend = new OnnxBackend();
  it.each(EFFDET_CASES)('%s', async (label, c) => {
    const diffs = await effdetParity(backend, c, { threads: 2 });
    console.info(describeDiffs(`onnx ${label}`, diffs));
    for (const d of diffs) expect(d.diff, d.name).toBeLessThanOrEqual(1e-4 * d.scale);
  });

  it('gives the same outputs without BatchNorm folding (shared head convs unfolded)', async () => {
    const diffs = await effdetParity(backend, EFFDET_CASES[3]![1], { threads: 2, foldBatchNorm: false });
    for (const d of diffs) expect(d.diff, d.name).toBeLessThanOrEqual(1e-4 * d.scale);
  });
});
