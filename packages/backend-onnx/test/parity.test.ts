import { type EfficientNetSpec, buildEfficientNet, readNpy, readSafetensors, specFor, toCanonicalNames } from '@effnet/core';
import { expect, it } from 'vitest';
import { describeWithPeers, maxDiff, torchvisionFixture } from '../../../testing/peers.js';
import { OnnxBackend } from '../src/index.js';

/**
 * Parity with torchvision: random weights with calibrated, perturbed BatchNorm statistics, saved under torchvision's
 * names; our ONNX graph must give torchvision's logits to max|diff| <= 1e-4 * max|logit| and <= 1e-3.
 * Any variant works: EFFNET_PARITY_VARIANTS=efficientnet_b3,efficientnet_v2_m adds more.
 */
async function parity(variant: string, opts: { resolution?: number; padding?: 'symmetric' | 'same'; dynamic?: boolean } = {}) {
  const fx = torchvisionFixture(variant, { resolution: opts.resolution, padding: opts.padding });
  const base = specFor(variant, { family: 'torchvision' });
  const spec: EfficientNetSpec = { ...base, padding: opts.padding ?? base.padding };
  const resolution = fx.meta.resolution as number;
  expect(fx.meta.bn_eps).toBe(spec.bnEps);
  const graph = buildEfficientNet(spec, { inputResolution: opts.dynamic ? null : resolution });
  const { tensors } = await readSafetensors(fx.weights);
  const runner = await new OnnxBackend().load(graph, toCanonicalNames('torchvision', spec, tensors), { threads: 2 });
  const input = await readNpy(fx.input);
  const want = await readNpy(fx.logits);
  const got = (await runner.run(input)).logits!;
  await runner.dispose();
  expect(got.shape).toEqual(want.shape);
  const { diff, scale } = maxDiff(got.data as Float32Array, want.data as Float32Array);
  // The fixture's logits must depend on the input, or the comparison proves little.
  expect(fx.meta.input_sensitivity as number).toBeGreaterThan(1e-2);
  expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  expect(diff).toBeLessThanOrEqual(1e-3);
  console.info(`parity ${variant} ${JSON.stringify(opts)}: max|diff| ${diff.toExponential(2)}, max|logit| ${scale.toFixed(3)}`);
  return { diff, scale };
}

const extra = (process.env.EFFNET_PARITY_VARIANTS ?? '').split(',').filter(Boolean);

describeWithPeers(['torch', 'torchvision'], 'ONNX backend vs torchvision logits', () => {
  it.each(['efficientnet_b0', 'efficientnet_v2_s', ...extra])('%s at its eval resolution', async (variant) => {
    await parity(variant);
  });
  it('efficientnet_b0 at another size with a dynamic-size graph', async () => {
    await parity('efficientnet_b0', { resolution: 160, dynamic: true });
  });
  it('TF SAME padding (timm tf_* convention), static pads and the dynamic form', async () => {
    // Even size: SAME is asymmetric (0, 1) at every stride-2 layer, so it differs from symmetric padding.
    await parity('efficientnet_b0', { resolution: 224, padding: 'same' });
    await parity('efficientnet_b0', { resolution: 224, padding: 'same', dynamic: true });
  });
});
