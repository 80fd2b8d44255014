import { expect, it } from 'vitest';
import { describeWithPeers } from '../../../testing/peers.js';
import { TIMM_CASES, timmFixture, timmParity } from '../../../testing/timm.js';
import { TfjsBackend } from '../src/index.js';

/** The same families on TensorFlow.js (wasm), at the odd size. */
describeWithPeers(['torch', 'timm'], 'tfjs backend vs timm', () => {
  it('every family at 97 px', async () => {
    const results = await timmParity(new TfjsBackend(), timmFixture(TIMM_CASES[0]!), { device: 'wasm' });
    console.info(results.map((r) => `${r.model}: ${r.relative.toExponential(1)}`).join(', '));
    for (const r of results) expect(r.relative, r.model).toBeLessThanOrEqual(1e-4);
  });
});
