import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackend } from '@effnet/backend-onnx';
import { buildEfficientNet, parseSafetensors, specFor, type Tensor, toCanonicalNames, toTorchvision, WeightMismatchError } from '@effnet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyPth, stateDictOf, zipPth } from '../../core/test/pth-writer.js';
import { BUILTIN_ENTRIES, loadPretrained, loadPretrainedWeights, normalize } from '../src/index.js';
import { cleanEnv, randomInput, removeTempDirs, safetensorsBytes, sendBody, sha256, smallModel, tempDir, TestServer, testWeights } from './helpers.js';

const server = new TestServer();
let registryFile = '';
const files: Record<string, Uint8Array> = {};
const x = randomInput([2, 3, 32, 32]);

/** The reference: the same bytes loaded directly, without the zoo. */
async function direct(bytes: Uint8Array, naming: 'timm' | 'torchvision', family: 'timm' | 'torchvision'): Promise<Float32Array> {
  const spec = specFor('efficientnet_b0', { family });
  const graph = buildEfficientNet(spec, { numClasses: 10, inputResolution: 32 });
  const runner = await new OnnxBackend().load(graph, toCanonicalNames(naming, spec, parseSafetensors(bytes).tensors), { threads: 1 });
  try {
    return (await runner.run(x)).logits!.data as Float32Array;
  } finally {
    await runner.dispose();
  }
}

beforeAll(async () => {
  const base = await server.start();
  const { graph } = smallModel('efficientnet_b0');
  const w = testWeights(graph, 3);
  files.timm = safetensorsBytes(w);
  const tv = smallModel('efficientnet_b0', 'torchvision');
  const tvWeights = toTorchvision(tv.spec, testWeights(tv.graph, 4));
  files.torchvision = safetensorsBytes(tvWeights);
  // The same weights as PyTorch checkpoints: a training checkpoint whose EMA entry (found first by default) holds
  // other values, with DataParallel names; and a plain legacy-format state_dict.
  const other = toTorchvision(tv.spec, testWeights(tv.graph, 5));
  files.tvckpt = zipPth({ epoch: 5, model: stateDictOf(tvWeights, 'module.'), model_ema: stateDictOf(other, 'module.', 1000), lr: 0.01 });
  files.tvlegacy = legacyPth(stateDictOf(tvWeights));
  for (const k of Object.keys(files)) server.route(`/${k}/model.safetensors`, (req, res, n) => sendBody(req, res, files[k]!, n));
  const pre = { inputSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const e = (name: string, arch: string, family: string, file: string) => ({ name, arch, family, format: 'safetensors', url: `${base}/${file}/model.safetensors`, sha256: sha256(files[file]!), preprocessing: pre, numClasses: 10 });
  registryFile = join(tempDir(), 'registry.json');
  writeFileSync(
    registryFile,
    JSON.stringify({
      entries: [
        e('tiny.timm', 'efficientnet_b0', 'timm', 'timm'),
        e('tiny.tv', 'efficientnet_b0', 'torchvision', 'torchvision'),
        e('wrong.arch', 'efficientnet_b2', 'timm', 'timm'),
        e('wrong.naming', 'efficientnet_b0', 'timm', 'torchvision'),
        { ...e('tiny.tv.ckpt', 'efficientnet_b0', 'torchvision', 'tvckpt'), format: 'pth', weightsKey: 'model' },
        { ...e('tiny.tv.legacy', 'efficientnet_b0', 'torchvision', 'tvlegacy'), format: 'pth' },
      ],
    }),
  );
});
afterAll(() => server.stop());

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('loadPretrained', () => {
  it('pulls timm-named weights, runs them like a direct load of the same file, then loads from the cache with the server stopped', async () => {
    const cacheDir = tempDir();
    const want = await direct(files.timm!, 'timm', 'timm');
    expect(maxAbs(want)).toBeGreaterThan(0);
    const m = await loadPretrained('tiny.timm', { registry: registryFile, env: cleanEnv(), cacheDir, backend: 'onnx', device: 'cpu', threads: 1 });
    expect(m).toMatchObject({ name: 'tiny.timm', labels: 'imagenet-1k', numClasses: 10, preprocessing: { inputSize: 32, mean: [0.5, 0.5, 0.5] } });
    expect(m.runner.device).toBe('cpu');
    const got = await m.run(x);
    await m.dispose();
    expect(got.shape).toEqual([2, 10]);
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(want));

    const requests = server.hits.length;
    await server.stop();
    const again = await loadPretrained('tiny.timm', { registry: registryFile, env: cleanEnv({ EFFNET_OFFLINE: '1' }), cacheDir, backend: new OnnxBackend(), threads: 1 });
    expect(Array.from((await again.run(x)).data as Float32Array)).toEqual(Array.from(want));
    await again.dispose();
    expect(server.hits.length).toBe(requests);
    await server.start().then((b) => {
      // Same routes, new port: rewrite the registry's URLs.
      const doc = JSON.parse(readFileSync(registryFile, 'utf8'));
      for (const en of doc.entries) en.url = en.url.replace(/^http:\/\/127\.0\.0\.1:\d+/, b);
      writeFileSync(registryFile, JSON.stringify(doc));
    });
  });

  it('converts torchvision names through the shared table and matches a direct load', async () => {
    const want = await direct(files.torchvision!, 'torchvision', 'torchvision');
    const m = await loadPretrained('tiny.tv', { registry: registryFile, env: cleanEnv(), cacheDir: tempDir(), backend: new OnnxBackend(), threads: 1 });
    expect(Array.from((await m.run(x)).data as Float32Array)).toEqual(Array.from(want));
    await m.dispose();
  });

  it('a file that does not fit the architecture is reported with every missing, unexpected and mis-shaped tensor', async () => {
    const err = await loadPretrainedWeights('wrong.arch', { registry: registryFile, env: cleanEnv(), cacheDir: tempDir() }).catch((e) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    const e = err as WeightMismatchError;
    // B2 is wider and deeper than B0: its extra blocks are missing, and shared ones have other shapes.
    expect(e.missing).toContain('blocks.1.2.conv_pw.weight');
    expect(e.misshaped.find((m) => m.name === 'conv_head.weight')).toEqual({ name: 'conv_head.weight', expected: [1408, 352, 1, 1], actual: [1280, 320, 1, 1] });
    expect(e.message).toMatch(/the file: .*model\.safetensors \(entry "wrong\.arch": arch efficientnet_b2, family timm, naming timm, 10 classes\)/);
    const { graph } = smallModel('efficientnet_b2');
    const declared = new Set(graph.parameters.map((p) => p.name));
    const inFile = new Set(parseSafetensors(files.timm!).tensors.keys());
    expect(new Set(e.missing)).toEqual(new Set([...declared].filter((n) => !inFile.has(n))));
    expect(new Set(e.unexpected)).toEqual(new Set([...inFile].filter((n) => !declared.has(n))));
  });

  it('torchvision names declared as timm are caught with a hint', async () => {
    const err = await loadPretrainedWeights('wrong.naming', { registry: registryFile, env: cleanEnv(), cacheDir: tempDir() }).catch((e) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect(err.message).toMatch(/hint: these look like torchvision names/);
  });

  it('loads registry entries with format "pth" end to end: pull, verify, read without Python, convert, run', async () => {
    const want = await direct(files.torchvision!, 'torchvision', 'torchvision');
    for (const name of ['tiny.tv.ckpt', 'tiny.tv.legacy']) {
      const m = await loadPretrained(name, { registry: registryFile, env: cleanEnv(), cacheDir: tempDir(), backend: new OnnxBackend(), threads: 1 });
      expect(Array.from((await m.run(x)).data as Float32Array), name).toEqual(Array.from(want));
      await m.dispose();
    }
    const ck = await loadPretrainedWeights('tiny.tv.ckpt', { registry: registryFile, env: cleanEnv(), cacheDir: tempDir() });
    expect(ck.notes).toContain('read PyTorch checkpoint (zip), entry "model", prefix "module." removed, 311 tensors');
  });

  it("the entry's weightsKey can be overridden, and a wrong one names the entries that hold weights", async () => {
    const ema = await loadPretrainedWeights('tiny.tv.ckpt', { registry: registryFile, env: cleanEnv(), cacheDir: tempDir(), weightsKey: 'model_ema' });
    expect(ema.notes.at(-1)).toMatch(/entry "model_ema"/);
    const err = await loadPretrainedWeights('tiny.tv.ckpt', { registry: registryFile, env: cleanEnv(), cacheDir: tempDir(), weightsKey: 'ema' }).catch((e) => e);
    expect(err.message).toMatch(/weights key "ema" is not in the checkpoint; entries holding weights: "model", "model_ema"/);
  });

  it("torchvision's built-in entries are .pth files read with torchvision names, with no conversion note", () => {
    const tv = BUILTIN_ENTRIES.filter((e) => e.family === 'torchvision');
    expect(tv.length).toBe(12);
    for (const e of tv) {
      expect(e).toMatchObject({ format: 'pth', naming: 'torchvision' });
      expect(e.notes).toBeUndefined();
    }
  });

  it('normalize applies the entry mean and std per channel', () => {
    const px: Tensor = { dtype: 'float32', shape: [1, 3, 1, 2], data: Float32Array.from([0, 1, 0.5, 0.5, 1, 0]) };
    expect(Array.from(normalize(px, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 1] }).data as Float32Array)).toEqual([-1, 1, 0, 0, 0.5, -0.5]);
  });
});

afterAll(removeTempDirs);
