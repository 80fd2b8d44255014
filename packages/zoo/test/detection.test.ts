import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OnnxBackend } from '@effnet/backend-onnx';
import { buildEfficientDet, detectorConfig, readNpy, serializeSafetensors, specFor, type Tensor, WeightMismatchError } from '@effnet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithPeers, effdetFixture, effdetPthFixture, maxDiff, PYTHON, pythonEnv } from '../../../testing/peers.js';
import { BUILTIN_ENTRIES, defaultDetectorPreprocessing, HALF, IMAGENET_MEAN, loadPretrained, loadPretrainedWeights, Registry, specForEntry, validateEntry, WEIGHT_FORMATS } from '../src/index.js';
import { cleanEnv, randomInput, removeTempDirs, sendBody, sha256, tempDir, TestServer, testWeights } from './helpers.js';

afterAll(() => removeTempDirs());

const validate = (raw: unknown) => validateEntry(raw, 'e', { requireSha256: false, formats: WEIGHT_FORMATS, origin: 'test' });
const DET = { name: 'det.x', arch: 'tf_efficientdet_lite0', task: 'detection', family: 'effdet', format: 'pth', url: 'https://example.com/x.pth' };

describe('detection entries in the registry schema', () => {
  it('take a detector arch, effdet family and naming, coco-90 labels and effdet\'s preprocessing by default', () => {
    const { entry, problems } = validate(DET);
    expect(problems).toEqual([]);
    expect(entry).toMatchObject({ task: 'detection', naming: 'effdet', labels: 'coco-90', preprocessing: { inputSize: 320, interpolation: 'bicubic', mean: HALF, std: HALF } });
    expect(validate({ ...DET, arch: 'tf_efficientdet_d1', cocoMap: 40.1 }).entry).toMatchObject({ cocoMap: 40.1, preprocessing: { inputSize: 640, mean: IMAGENET_MEAN } });
    // Some preprocessing given: the detector's size and mean/std stay the defaults of what is not.
    expect(validate({ ...DET, preprocessing: { interpolation: 'bilinear' } }).entry!.preprocessing).toEqual({ inputSize: 320, mean: HALF, std: HALF, interpolation: 'bilinear' });
    expect(specForEntry(validate(DET).entry!)).toMatchObject({ name: 'tf_efficientnet_lite0', padding: 'same' });
  });

  it('name every field that does not fit a detector, and a detector arch without the task', () => {
    const problems = (raw: unknown) => validate(raw).problems.map((p) => `${p.where}: ${p.message}`);
    expect(problems({ ...DET, arch: 'efficientnet_b0' })).toEqual([expect.stringMatching(/e \("det\.x"\)\.arch: "efficientnet_b0" is not a known detector, as the task is detection/)]);
    expect(problems({ ...DET, task: undefined })).toEqual([expect.stringMatching(/arch: "tf_efficientdet_lite0" is not a variant: it is a detector, so set "task": "detection"/)]);
    expect(problems({ ...DET, task: 'keypoints' })).toEqual([expect.stringMatching(/task: "keypoints" is not one of classification, detection, segmentation/), expect.stringMatching(/arch: .*so set "task": "detection"/)]);
    expect(problems({ ...DET, task: 'segmentation' })).toEqual([expect.stringMatching(/arch: "tf_efficientdet_lite0" is not a segmenter, as the task is segmentation/)]);
    expect(problems({ ...DET, family: 'timm' })).toEqual([expect.stringMatching(/family: "timm": a detection entry's weights follow effdet's conventions/)]);
    expect(problems({ ...DET, naming: 'torchvision' })).toEqual([expect.stringMatching(/naming: "torchvision": a detector's weights are read under effdet's names/)]);
    expect(problems({ ...DET, top1: 77 })).toEqual([expect.stringMatching(/top1: is an ImageNet classification figure; a detection entry reports cocoMap/)]);
    expect(problems({ ...DET, overrides: { padding: 'same' } })).toEqual([expect.stringMatching(/overrides: a detector's padding and BatchNorm come from its config/)]);
    expect(problems({ ...DET, cocoMap: 140 })).toEqual([expect.stringMatching(/cocoMap: 140 is not a percentage/)]);
    const cls = { name: 'c.x', arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: 'https://example.com/x' };
    expect(problems({ ...cls, family: 'effdet' })).toEqual([expect.stringMatching(/family: "effdet" is the family of detection entries; set task "detection"/)]);
    expect(problems({ ...cls, naming: 'effdet' })).toEqual([expect.stringMatching(/naming: "effdet" names a detector's weights/)]);
    expect(problems({ ...cls, cocoMap: 30 })).toEqual([expect.stringMatching(/cocoMap: is a detection figure/)]);
  });

  it("a detection entry is no classifier: loadPretrained refuses it before pulling anything", async () => {
    const registry = new Registry([validate({ ...DET, url: 'http://127.0.0.1:9/never.pth' }).entry!]);
    await expect(loadPretrained('det.x', { registry, env: cleanEnv(), cacheDir: tempDir() })).rejects.toThrow(/model: "det\.x" \(a classifier: this zoo entry is a detector \(use Detector\.load/);
  });
});

describe("the built-in effdet entries", () => {
  const det = BUILTIN_ENTRIES.filter((e) => e.task === 'detection' && e.family === 'effdet' && e.format === 'pth');

  it("cover effdet's COCO checkpoints: D0-D7x, Lite0-4 and effdet's own D0/D1, each with its detector's size", () => {
    const archs = det.map((e) => e.arch);
    for (const a of [...[0, 1, 2, 3, 4, 5, 6, 7].map((d) => `tf_efficientdet_d${d}`), 'tf_efficientdet_d7x', ...[0, 1, 2, 3, 4].map((l) => `tf_efficientdet_lite${l}`), 'efficientdet_d0', 'efficientdet_d1'])
      expect(archs, a).toContain(a);
    for (const e of det) {
      expect(e).toMatchObject({ name: `${e.arch}.coco`, family: 'effdet', naming: 'effdet', format: 'pth', labels: 'coco-90', numClasses: 90, license: 'apache-2.0' });
      expect(e.url).toMatch(new RegExp(`^https://github\\.com/rwightman/efficientdet-pytorch/releases/download/v0\\.1/${e.arch}(_\\d+)?-[0-9a-f]{8}\\.pth$`));
      expect(e.preprocessing).toEqual(defaultDetectorPreprocessing(e.arch));
      expect(e.preprocessing.inputSize).toBe(detectorConfig(e.arch).imageSize[0]);
      expect(e.preprocessing.mean).toEqual(e.arch.includes('lite') ? HALF : IMAGENET_MEAN);
      if (e.arch.includes('lite')) expect(e.cocoMap).toBeUndefined();
      else expect(e.cocoMap).toBeGreaterThan(30);
    }
    // The D-series file names carry the rounded mAP the entry reports.
    for (const e of det) {
      const m = /_d\d_(\d+)-/.exec(e.url);
      if (m) expect(Math.floor(e.cocoMap!)).toBe(Number(m[1]));
    }
  });
});

/** The raw outputs of a detector graph and weights on ONNX Runtime. */
async function rawOutputs(graph: Parameters<OnnxBackend['load']>[0], weights: Parameters<OnnxBackend['load']>[1], x: Tensor): Promise<Record<string, Tensor>> {
  const runner = await new OnnxBackend().load(graph, weights, { threads: 2 });
  try {
    return await runner.run(x);
  } finally {
    await runner.dispose();
  }
}

describe('loadPretrainedWeights for a detection entry', () => {
  const server = new TestServer();
  const config = detectorConfig('tf_efficientdet_lite0');
  const graph = buildEfficientDet(config, { numClasses: 3, inputResolution: 64 });
  const weights = testWeights(graph, 5);
  const bytes = serializeSafetensors(weights);
  let registry: Registry;

  beforeAll(async () => {
    const base = await server.start();
    server.route('/det/lite0.safetensors', (req, res, n) => sendBody(req, res, bytes, n));
    const entry = (over: Record<string, unknown>) => validate({ ...DET, format: 'safetensors', url: `${base}/det/lite0.safetensors`, sha256: sha256(bytes), ...over }).entry!;
    registry = new Registry([entry({ name: 'lite0.three' }), entry({ name: 'lite0.wrong', arch: 'tf_efficientdet_d0' }), entry({ name: 'lite0.fifty', numClasses: 50 })]);
  });
  afterAll(() => server.stop());

  it('builds the detector with the class count of the weights and runs like a direct load', async () => {
    const w = await loadPretrainedWeights('lite0.three', { registry, env: cleanEnv(), cacheDir: tempDir(), resolution: 64 });
    expect(w.detector?.name).toBe('tf_efficientdet_lite0');
    expect(w.graph.metadata).toMatchObject({ task: 'detection', numClasses: 3 });
    expect(w.graph.outputs).toEqual(graph.outputs);
    const x = randomInput([1, 3, 64, 64]);
    const [got, want] = [await rawOutputs(w.graph, w.weights, x), await rawOutputs(graph, weights, x)];
    for (const name of graph.outputs) expect(Array.from(got[name]!.data as Float32Array), name).toEqual(Array.from(want[name]!.data as Float32Array));
  });

  it('names the detector the weights belong to, and a class count that does not match', async () => {
    await expect(loadPretrainedWeights('lite0.wrong', { registry, env: cleanEnv(), cacheDir: tempDir() })).rejects.toThrow(
      /hint: .*lite0\.safetensors \(entry "lite0\.wrong"\) holds the weights of tf_efficientdet_lite0, not tf_efficientdet_d0/,
    );
    const e = await loadPretrainedWeights('lite0.fifty', { registry, env: cleanEnv(), cacheDir: tempDir() }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(WeightMismatchError);
    expect((e as WeightMismatchError).misshaped.map((m) => m.name)).toEqual(['class_net.predict.conv_pw.weight', 'class_net.predict.conv_pw.bias']);
  });
});

describeWithPeers(['torch', 'effdet'], "a detection entry with effdet's own .pth (against effdet)", () => {
  const server = new TestServer();
  let fx: ReturnType<typeof effdetFixture>;
  let pth: Uint8Array;
  let pthFile = '';

  beforeAll(async () => {
    fx = effdetFixture('tf_efficientdet_lite0');
    pthFile = effdetPthFixture(fx);
    pth = readFileSync(pthFile);
    await server.start();
    server.route('/effdet/tf_efficientdet_lite0-fixture.pth', (req, res, n) => sendBody(req, res, pth, n));
  });
  afterAll(() => server.stop());

  async function expectEffdetOutputs(w: Awaited<ReturnType<typeof loadPretrainedWeights>>): Promise<void> {
    const out = await rawOutputs(w.graph, w.weights, await readNpy(fx.input));
    for (const [name, file] of Object.entries(fx.outputs)) {
      const { diff, scale } = maxDiff(out[name]!.data as Float32Array, (await readNpy(file)).data as Float32Array);
      expect(fx.meta.outputs[name]!.input_sensitivity!, name).toBeGreaterThan(1e-2);
      expect(diff, name).toBeLessThanOrEqual(1e-4 * scale);
    }
  }

  it("the built-in tf_efficientdet_lite0.coco entry, its URL pointed at the local server, gives effdet's raw outputs", async () => {
    const builtin = (await Registry.load({ env: cleanEnv() })).get('tf_efficientdet_lite0.coco');
    const entry = { ...builtin, url: `${server.base}/effdet/tf_efficientdet_lite0-fixture.pth`, sha256: sha256(pth) };
    const w = await loadPretrainedWeights(entry.name, { registry: new Registry([entry]), env: cleanEnv(), cacheDir: tempDir() });
    expect(w.notes.some((n) => /read PyTorch checkpoint \(zip\)/.test(n))).toBe(true);
    expect(w.graph.metadata).toMatchObject({ detector: 'tf_efficientdet_lite0', numClasses: 90 });
    await expectEffdetOutputs(w);
  });

  it('and from a file:// URL in a registry file', async () => {
    const file = join(tempDir(), 'registry.json');
    writeFileSync(file, JSON.stringify({ entries: [{ ...DET, name: 'lite0.local', url: pathToFileURL(pthFile).href, sha256: sha256(pth) }] }));
    await expectEffdetOutputs(await loadPretrainedWeights('lite0.local', { registry: file, env: cleanEnv(), cacheDir: tempDir() }));
  });

  it("the entries' URLs and image sizes are effdet's model_config", () => {
    const det = BUILTIN_ENTRIES.filter((e) => e.task === 'detection' && e.format === 'pth');
    const script = 'import json, sys; from effdet import get_efficientdet_config as c; print(json.dumps({n: [c(n).url, list(c(n).image_size)] for n in sys.argv[1:]}))';
    const r = spawnSync(PYTHON, ['-c', script, ...det.map((e) => e.arch)], { encoding: 'utf8', env: pythonEnv() });
    expect(r.status, r.stderr).toBe(0);
    const want = JSON.parse(r.stdout);
    for (const e of det) {
      expect(e.url, e.name).toBe(want[e.arch][0]);
      expect([e.preprocessing.inputSize, e.preprocessing.inputSize], e.name).toEqual(want[e.arch][1]);
    }
  });
});

describe('specForEntry of a detection entry', () => {
  it("is the detector's backbone", () => {
    const e = BUILTIN_ENTRIES.find((x) => x.name === 'efficientdet_d1.coco')!;
    expect(specForEntry(e)).toEqual(specFor('efficientnet_b1', { dropPathRate: 0.2 }));
  });
});
