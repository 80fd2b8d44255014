import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildEfficientDet,
  buildEfficientNet,
  detectorConfig,
  float32Tensor,
  type Graph,
  randomWeights,
  seededNormal,
  specFor,
  type Tensor,
  type TensorMap,
  WeightMismatchError,
} from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { everyKind, nontrivialWeights, randomInput, sharedHead } from '../../../testing/graphs.js';
import { describeWithPeers, maxDiff, runPython } from '../../../testing/peers.js';
import { compileToOnnx, DeviceUnavailableError, InputError, OnnxBackend, OnnxCompileError } from '../src/index.js';

const backend = new OnnxBackend();

async function run(g: Graph, w: TensorMap, x: Tensor, opts = {}): Promise<Float32Array> {
  const r = await backend.load(g, w, { threads: 2, ...opts });
  try {
    return (await r.run(x))[g.outputs[0]!]!.data as Float32Array;
  } finally {
    await r.dispose();
  }
}

describe('compileToOnnx', () => {
  const b0 = buildEfficientNet(specFor('efficientnet_b0'), { inputResolution: 96 });
  const w = nontrivialWeights(b0);
  const x = randomInput([2, 3, 96, 96]);

  it('BN folding and no-op removal do not change the numbers', async () => {
    const folded = await run(b0, w, x);
    const plain = await run(b0, w, x, { foldBatchNorm: false, removeNoOps: false });
    const { diff, scale } = maxDiff(folded, plain);
    expect(diff).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
  });

  it('TF SAME padding: static pads and the dynamic form agree', async () => {
    const spec = specFor('tf_efficientnet_b0');
    const odd = randomInput([1, 3, 97, 75]);
    const staticG = buildEfficientNet(spec, { inputResolution: [97, 75], numClasses: 10 });
    const dynamicG = buildEfficientNet(spec, { inputResolution: null, numClasses: 10 });
    const ws = nontrivialWeights(staticG);
    const a = await run(staticG, ws, odd);
    const b = await run(dynamicG, ws, odd);
    const { diff, scale } = maxDiff(a, b);
    expect(diff).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
    expect(new TextDecoder().decode(compileToOnnx(dynamicG, ws).model)).toContain('SAME_UPPER');
  });

  it('fp16 stays close to fp32 and halves the file', async () => {
    const a = await run(b0, w, x);
    let b: Float32Array;
    try {
      b = await run(b0, w, x, { fp16: true });
    } catch (e) {
      throw new Error(`fp16 model did not run on cpu: ${(e as Error).message}`);
    }
    const { diff, scale } = maxDiff(b, a);
    expect(diff).toBeLessThan(0.05 * scale);
    expect(compileToOnnx(b0, w, { fp16: true }).model.length).toBeLessThan(0.55 * compileToOnnx(b0, w).model.length);
  });

  it('external data gives the same numbers', async () => {
    const c = compileToOnnx(b0, w, { externalData: true });
    expect(c.externalData?.location).toBe('model.onnx.data');
    expect(c.model.length).toBeLessThan(200_000);
    const a = await run(b0, w, x);
    const b = await run(b0, w, x, { externalData: true });
    expect(maxDiff(a, b).diff).toBe(0);
  });

  it('compiles and runs every node kind, with a dynamic batch and size', async () => {
    const g = everyKind();
    const wk = nontrivialWeights(g);
    const r = await backend.load(g, wk, { threads: 1 });
    for (const shape of [[1, 3, 32, 32], [3, 3, 37, 29]]) {
      const out = await r.run(randomInput(shape));
      expect(out.head!.shape).toEqual([shape[0], 5]);
      expect(Array.from(out.head!.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
    await r.dispose();
  });

  it('stores a parameter shared by several nodes once, and folds each reader\'s BatchNorm into its own copy', async () => {
    const g = sharedHead();
    const ws = nontrivialWeights(g);
    const weightBytes = g.parameters.reduce((s, p) => s + 4 * p.shape.reduce((a, d) => a * d, 1), 0);
    // Five readers of a 256x256 pointwise conv: stored five times, the file would be about 3.5x the weights.
    expect(compileToOnnx(g, ws, { foldBatchNorm: false }).model.length).toBeLessThan(1.1 * weightBytes);
    const input = randomInput([2, 3, 64, 48]);
    const plain = await backend.load(g, ws, { threads: 2, foldBatchNorm: false });
    const folded = await backend.load(g, ws, { threads: 2 });
    const a = await plain.run(input);
    const b = await folded.run(input);
    for (const name of g.outputs) {
      const { diff, scale } = maxDiff(b[name]!.data as Float32Array, a[name]!.data as Float32Array);
      expect(diff, name).toBeLessThanOrEqual(1e-5 * scale);
    }
    await plain.dispose();
    await folded.dispose();
  });

  it('records metadata, names and a dynamic batch axis', () => {
    const c = compileToOnnx(b0, w, { metadata: { 'effnet.preprocessing': '{"mean":[0.485,0.456,0.406]}' } });
    const text = new TextDecoder('latin1').decode(c.model);
    for (const s of ['effnet.variant', 'efficientnet_b0', 'effnet.preprocessing', 'batch', 'logits', 'input']) expect(text).toContain(s);
    expect(c.outputNames).toEqual(['logits']);
    expect(c.opset).toBe(17);
  });

  it('rejects an unsupported opset', () => {
    expect(() => compileToOnnx(b0, w, { opset: 7 })).toThrow(OnnxCompileError);
    expect(() => compileToOnnx(b0, w, { opset: 7 })).toThrow(/opset 7 is not supported; use one of 13/);
  });

  it('reports every missing, unexpected and mis-shaped weight by name', () => {
    const bad: TensorMap = new Map(w);
    bad.delete('conv_stem.weight');
    bad.delete('bn2.running_var');
    bad.set('extra.weight', float32Tensor([1]));
    bad.set('classifier.weight', float32Tensor([10, 1280]));
    bad.set('bn1.num_batches_tracked', { dtype: 'int64', shape: [], data: new BigInt64Array(1) });
    let err: WeightMismatchError | undefined;
    try {
      compileToOnnx(b0, bad);
    } catch (e) {
      err = e as WeightMismatchError;
    }
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect(err!.missing).toEqual(['conv_stem.weight', 'bn2.running_var']);
    expect(err!.unexpected).toEqual(['extra.weight']);
    expect(err!.message).toMatch(/mis-shaped: classifier.weight expected \[1000, 1280\] got \[10, 1280\]/);
  });
});

describe('OnnxRunner', () => {
  const g = buildEfficientNet(specFor('efficientnet_b0'), { inputResolution: 64, numClasses: 3 });
  const w = randomWeights(g);

  it('checks inputs before they reach the runtime', async () => {
    const r = await backend.load(g, w);
    await expect(r.run(randomInput([3, 64, 64]))).rejects.toThrow(/must be rank 4 NCHW \[N, 3, 64, 64\], got shape \[3, 64, 64\]/);
    await expect(r.run(randomInput([1, 64, 64, 3]))).rejects.toThrow(/NHWC\? transpose to NCHW/);
    await expect(r.run(randomInput([1, 3, 32, 64]))).rejects.toThrow(InputError);
    // Other dtypes are converted once, by value (float16 from its bits); NaN is refused by name unless allowed.
    const x = randomInput([1, 3, 64, 64]);
    const want = (await r.run(x)).logits!.data;
    expect((await r.run({ dtype: 'float64', shape: x.shape, data: Float64Array.from(x.data as Float32Array) })).logits!.data).toEqual(want);
    const nan = Float32Array.from(x.data as Float32Array);
    nan[5] = Number.NaN;
    await expect(r.run({ ...x, data: nan })).rejects.toThrow(/input "input" holds NaN at flat index 5/);
    expect((await r.run(randomInput([4, 3, 64, 64]))).logits!.shape).toEqual([4, 3]);
    await r.dispose();
  });

  it('an explicit device that is unavailable is a clear error, not a fallback', async () => {
    await expect(backend.load(g, w, { device: 'cuda' })).rejects.toThrow(DeviceUnavailableError);
    await expect(backend.load(g, w, { device: 'cuda' })).rejects.toThrow(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
  });

  it("'auto' reports what it picked and why it skipped the others", async () => {
    const r = await backend.load(g, w, { device: 'auto' });
    expect(['cuda', 'webgpu', 'cpu']).toContain(r.device);
    expect(r.notes.at(-1)).toBe(`picked ${r.device}`);
    if (r.device === 'cpu') expect(r.notes.some((n) => n.startsWith('skipped cuda'))).toBe(true);
    await r.dispose();
  });
});

describeWithPeers(['onnx'], 'ONNX checker (python3-onnx, full_check)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-onnx-'));
  it.each([
    ['efficientnet_b0', {}],
    ['efficientnetv2_s', {}],
    ['tf_efficientnet_lite0', { inputResolution: null }],
  ] as const)('%s passes onnx.checker.check_model(full_check=True)', (variant, build) => {
    const g = buildEfficientNet(specFor(variant), build);
    const file = join(dir, `${variant}.onnx`);
    writeFileSync(file, compileToOnnx(g, randomWeights(g)).model);
    const out = runPython('scripts/onnx_check.py', [file]);
    expect(out).toMatch(/^ok opset 17/);
  });
  it('an EfficientDet with shared head weights, folded and not, passes too', () => {
    const g = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { numClasses: 3 });
    for (const [name, opts] of [['det', {}], ['det_unfolded', { foldBatchNorm: false }]] as const) {
      const file = join(dir, `${name}.onnx`);
      writeFileSync(file, compileToOnnx(g, randomWeights(g), opts).model);
      expect(runPython('scripts/onnx_check.py', [file])).toMatch(/^ok opset 17/);
    }
  });
  it('the every-kind graph and an fp16 model pass too', () => {
    const g = everyKind();
    for (const [name, opts] of [['every', {}], ['every16', { fp16: true }]] as const) {
      const file = join(dir, `${name}.onnx`);
      writeFileSync(file, compileToOnnx(g, randomWeights(g), opts).model);
      expect(runPython('scripts/onnx_check.py', [file])).toMatch(/^ok/);
    }
  });
});
