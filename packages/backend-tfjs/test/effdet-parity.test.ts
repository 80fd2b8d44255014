import { expect, it } from 'vitest';
import { describeDiffs, type EffdetCase, effdetParity } from '../../../testing/effdet.js';
import { describeWithPeers } from '../../../testing/peers.js';
import { TfjsBackend } from '../src/index.js';

/**
 * Raw EfficientDet heads against effdet on TensorFlow.js (wasm), on the same fixtures as the ONNX backend's
 * effdet-parity test: every class_P* and box_P* output equals effdet's to max|diff| <= 1e-4 * max|value|.
 */
const CASES: [string, EffdetCase][] = [
  ['tf_efficientdet_d0 at 512 (TF SAME, fast fusion)', { model: 'tf_efficientdet_d0' }],
  ['tf_efficientdet_d0 at 256x320 with softmax fusion (bifpn_attn)', { model: 'tf_efficientdet_d0', imageSize: [256, 320], fusion: { effdet: 'bifpn_attn', effnet: 'softmax' } }],
  ['efficientdet_d0 at 384 (PyTorch padding, no redundant bias), dynamic-size graph', { model: 'efficientdet_d0', imageSize: [384, 384], dynamic: true }],
  ['tf_efficientdet_lite0 at 320 (ReLU6, sum fusion, odd level sizes)', { model: 'tf_efficientdet_lite0' }],
];

describeWithPeers(['torch', 'effdet'], 'tfjs backend (wasm) vs effdet raw outputs', () => {
  const backend = new TfjsBackend();
  it.each(CASES)('%s', async (label, c) => {
    const diffs = await effdetParity(backend, c, { device: 'wasm' });
    console.info(describeDiffs(`tfjs wasm ${label}`, diffs));
    for (const d of diffs) expect(d.diff, d.name).toBeLessThanOrEqual(1e-4 * d.scale);
  });
});
