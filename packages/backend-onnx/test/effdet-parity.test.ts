import { expect, it } from 'vitest';
import { describeDiffs, type EffdetCase, effdetParity } from '../../../testing/effdet.js';
import { describeWithPeers } from '../../../testing/peers.js';
import { OnnxBackend } from '../src/index.js';

/**
 * Raw EfficientDet heads against effdet (rwightman/efficientdet-pytorch) under Debian's PyTorch: random weights with
 * calibrated, perturbed BatchNorm statistics and perturbed fusion weights, saved under effdet's names; every
 * class_P* and box_P* output must equal effdet's to max|diff| <= 1e-4 * max|value|. The cases cover TF SAME and
 * PyTorch padding, every fusion (fast, softmax, sum), swish and ReLU6, default, other and non-square sizes, odd
 * level sizes (Lite0 at 320: 40, 20, 10, 5, 3) and a dynamic-size graph.
 */
export const CASES: [string, EffdetCase][] = [
  ['tf_efficientdet_d0 at 512 (TF SAME, fast fusion)', { model: 'tf_efficientdet_d0' }],
  ['tf_efficientdet_d0 at 256x320 with softmax fusion (bifpn_attn)', { model: 'tf_efficientdet_d0', imageSize: [256, 320], fusion: { effdet: 'bifpn_attn', effnet: 'softmax' } }],
  ['efficientdet_d0 at 384 (PyTorch padding, no redundant bias), dynamic-size graph', { model: 'efficientdet_d0', imageSize: [384, 384], dynamic: true }],
  ['tf_efficientdet_lite0 at 320 (ReLU6, sum fusion, odd level sizes)', { model: 'tf_efficientdet_lite0' }],
];

describeWithPeers(['torch', 'effdet'], 'ONNX backend vs effdet raw outputs', () => {
  const backend = new OnnxBackend();
  it.each(CASES)('%s', async (label, c) => {
    const diffs = await effdetParity(backend, c, { threads: 2 });
    console.info(describeDiffs(`onnx ${label}`, diffs));
    for (const d of diffs) expect(d.diff, d.name).toBeLessThanOrEqual(1e-4 * d.scale);
  });

  it('gives the same outputs without BatchNorm folding (shared head convs are left unfolded then)', async () => {
    const diffs = await effdetParity(backend, CASES[3]![1], { threads: 2, foldBatchNorm: false });
    for (const d of diffs) expect(d.diff, d.name).toBeLessThanOrEqual(1e-4 * d.scale);
  });
});
