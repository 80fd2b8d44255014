import { expect, it } from 'vitest';
import { describeWithPeers } from '../../../testing/peers.js';
import { SMP_CASES, smpParity } from '../../../testing/smp.js';
import { OnnxBackend } from '../src/index.js';

/**
 * U-Net, FPN and DeepLabV3+ on EfficientNet-B0 against segmentation_models_pytorch (timm-efficientnet-b0 encoder), and
 * bifpnseg on efficientdet_d0 against automl's head transcribed on effdet's modules (scripts/smp_reference.py):
 * random non-trivial weights under smp's names, logits equal to smp's float64 forward to 1e-4 * max|logit|.
 */
describeWithPeers(['torch', 'segmentation_models_pytorch', 'effdet'], 'ONNX backend vs smp logits', () => {
  const backend = new OnnxBackend();
  it.each(SMP_CASES)('%s', async (model) => {
    const r = await smpParity(backend, model, { threads: 2 });
    console.info(`onnx ${model}: max|diff| ${r.diff.toExponential(2)} of max|logit| ${r.scale.toFixed(2)} (relative ${r.relative.toExponential(2)}; smp's own float32: ${r.smpFloat32.toExponential(2)})`);
    expect(r.diff).toBeLessThanOrEqual(1e-4 * r.scale);
  });
});
