import { expect, it } from 'vitest';
import { describeWithPeers } from '../../../testing/peers.js';
import { TIMM_CASES, timmFixture, timmParity } from '../../../testing/timm.js';
import { OnnxBackend } from '../src/index.js';

/** Every variant family timm and effnet share, against timm's own models: logits to 1e-4 of the largest. */
describeWithPeers(['torch', 'timm'], 'ONNX backend vs timm', () => {
  const backend = new OnnxBackend();
  it.each(TIMM_CASES.map((c) => [`${c.models.length} models at ${c.res} px`, c] as const))('%s', async (_label, c) => {
    const results = await timmParity(backend, timmFixture(c), { threads: 2 });
    console.info(results.map((r) => `${r.model}@${c.res}: ${r.relative.toExponential(1)}`).join(', '));
    for (const r of results) expect(r.relative, r.model).toBeLessThanOrEqual(1e-4);
  });
});
