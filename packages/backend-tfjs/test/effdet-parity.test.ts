import { expect, it } from 'vitest';
import { describeDiffs, EFFDET_CASES, effdetParity } from '../../../testing/effdet.js';
import { describeWithPeers } from '../../../testing/peers.js';
import { TfjsBackend } from '../src/index.js';

/**
 * Raw EfficientDet heads against effdet on TensorFlow.js (wasm), on the ONNX backend's effdet-parity cases and
 * fixtures: every class_P* and box_P* output equals effdet's (float64 forward) to max|diff| <= 1e-4 * max|value|.
 */
describeWithPeers(['torch', 'effdet'], 'tfjs backend (wasm) vs effdet raw outputs', () => {
  const backend = new TfjsBackend();
  it.each(EFFDET_CASES)('%s', async (label, c) => {
    const diffs = await effdetParity(backend, c, { device: 'wasm' });
    console.info(describeDiffs(`tfjs wasm ${label}`, diffs));
    for (const d of diffs) expect(d.diff, d.name).toBeLessThanOrEqual(1e-4 * d.scale);
  });
});
