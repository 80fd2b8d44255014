import { buildEfficientNet, type EfficientNetSpec, randomWeights, readNpy, readSafetensors, specFor, toCanonicalNames, float32Tensor } from '@effnet/core';
import { OnnxBackend } from '@effnet/backend-onnx';
import { describe, expect, it } from 'vitest';
import { everyKind, nontrivialWeights, randomInput } from '../../../testing/graphs.js';
import { describeWithPeers, maxDiff, torchvisionFixture } from '../../../testing/peers.js';
import { TfjsBackend, tf } from '../src/index.js';

const backend = new TfjsBackend();

async function parity(variant: string, device: 'wasm' | 'js', opts: { resolution?: number; padding?: 'symmetric' | 'same' } = {}) {
  const fx = torchvisionFixture(variant, { resolution: opts.resolution, padding: opts.padding });
  const base = specFor(variant, { family: 'torchvision' });
  const spec: EfficientNetSpec = { ...base, padding: opts.padding ?? base.padding };
  const graph = buildEfficientNet(spec, { inputResolution: fx.meta.resolution as number });
  const weights = toCanonicalNames('torchvision', spec, (await readSafetensors(fx.weights)).tensors);
  const runner = await backend.load(graph, weights, { device });
  const input = await readNpy(fx.input);
  const got = (await runner.run(input)).logits!.data as Float32Array;
  runner.dispose();
  const want = (await readNpy(fx.logits)).data as Float32Array;
  const { diff, scale } = maxDiff(got, want);
  console.info(`tfjs ${device} parity ${variant} ${JSON.stringify(opts)}: max|diff| ${diff.toExponential(2)}, max|logit| ${scale.toFixed(3)}`);
  expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  expect(diff).toBeLessThanOrEqual(1e-3);
  // The ONNX backend on the same weights agrees too.
  const onnx = await new OnnxBackend().load(graph, weights);
  const o = (await onnx.run(input)).logits!.data as Float32Array;
  await onnx.dispose();
  expect(maxDiff(got, o).diff).toBeLessThanOrEqual(1e-4 * scale);
}

describeWithPeers(['torch', 'torchvision'], 'tfjs backend vs torchvision logits', () => {
  it.each(['efficientnet_b0', 'efficientnet_v2_s'])('%s on wasm', async (v) => parity(v, 'wasm'));
  it('efficientnet_b0 on the JS cpu backend (smaller input)', async () => parity('efficientnet_b0', 'js', { resolution: 96 }));
  it('TF SAME padding', async () => parity('efficientnet_b0', 'wasm', { resolution: 224, padding: 'same' }));
});

describe('tfjs inference', () => {
  it('leaks no tensors over 20 runs', async () => {
    const g = buildEfficientNet(specFor('efficientnet_b0'), { inputResolution: 64, numClasses: 4 });
    const r = await backend.load(g, randomWeights(g), { device: 'wasm' });
    const x = float32Tensor([1, 3, 64, 64]);
    await r.run(x);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) await r.run(x);
    expect(tf.memory().numTensors).toBe(before);
    r.dispose();
  });
  it('rejects a wrong input shape by name', async () => {
    const g = buildEfficientNet(specFor('efficientnet_b0'), { inputResolution: 64, numClasses: 4 });
    const r = await backend.load(g, randomWeights(g), { device: 'wasm' });
    await expect(r.run(float32Tensor([1, 64, 64, 3]))).rejects.toThrow(/must have shape \[N, 3, 64, 64\], got \[1, 64, 64, 3\] \(NHWC\? transpose to NCHW\)/);
    r.dispose();
  });
});

describe('every node kind', () => {
  it('gives the ONNX backend\'s outputs on tfjs (wasm), at two input sizes and a dynamic batch', async () => {
    const g = everyKind();
    const w = nontrivialWeights(g);
    const onnx = await new OnnxBackend().load(g, w);
    const tfjs = await backend.load(g, w, { device: 'wasm' });
    for (const shape of [[1, 3, 32, 32], [3, 3, 37, 29]]) {
      const x = randomInput(shape);
      const a = await onnx.run(x);
      const b = await tfjs.run(x);
      for (const name of g.outputs) {
        expect(b[name]!.shape, name).toEqual(a[name]!.shape);
        const { diff, scale } = maxDiff(b[name]!.data as Float32Array, a[name]!.data as Float32Array);
        expect(diff, `${name} at [${shape}]`).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
      }
    }
    await onnx.dispose();
    tfjs.dispose();
  });
});
