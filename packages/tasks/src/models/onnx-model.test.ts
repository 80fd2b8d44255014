import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrateInt8, compileToOnnx, encodeModel, OnnxBackend } from '@effnet/backend-onnx';
import { float32Tensor, seededNormal } from '@effnet/core';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { generateShape } from '../data/shapes.js';
import { preprocessBatch } from '../images/preprocess.js';
import { Classifier } from '../classification/classifier.js';
import { Detector } from '../detection/detector.js';
import { onnxExportMetadata } from './onnx-export.js';
import { loadOnnxModel, ONNX_METADATA_KEYS, OnnxModelError } from './onnx-model.js';
import { loadModelWeights, resolveModel } from './resolve.js';
import { loadRunner } from './runner.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-onnx-model-'));

/** Exports `model` as effnet export does and returns the file. */
async function exportModel(model: string, file: string, o: { inputResolution?: number | null; fp16?: boolean } = {}): Promise<string> {
  const m = await loadModelWeights(model, { inputResolution: o.inputResolution });
  const path = join(dir, file);
  writeFileSync(path, compileToOnnx(m.graph, m.weights, { fp16: o.fp16, metadata: onnxExportMetadata(m, { file: path, precision: o.fp16 ? 'fp16' : 'fp32' }) }).model);
  return path;
}

const shapes = () => Promise.all([0, 1, 2, 3, 4, 5].map((i) => sharp(Buffer.from(generateShape(5151, i, { size: 48 }).data), { raw: { width: 48, height: 48, channels: 3 } }).png().toBuffer()));

describe('self-describing ONNX exports', () => {
  it('an exported .onnx is a model by itself: the same classes, preprocessing and predictions as its source', async () => {
    const file = await exportModel('effnet-shapes', 'shapes.onnx');
    expect(await resolveModel(file)).toEqual({ kind: 'onnx', name: file, path: file });
    const x = await loadOnnxModel(file);
    expect(x.info.metadata[ONNX_METADATA_KEYS.labels]).toBe(JSON.stringify(['circle', 'cross', 'ring', 'square', 'star', 'triangle']));
    expect(x.info.metadata).toMatchObject({ [ONNX_METADATA_KEYS.arch]: 'efficientnet_phi-4', [ONNX_METADATA_KEYS.task]: 'classification', [ONNX_METADATA_KEYS.family]: 'effnet', [ONNX_METADATA_KEYS.inputSize]: '48x48', [ONNX_METADATA_KEYS.precision]: 'fp32' });
    expect(JSON.parse(x.info.metadata[ONNX_METADATA_KEYS.preprocessing]!)).toMatchObject({ inputSize: 48, cropPct: 1, interpolation: 'bicubic' });
    const fromOnnx = await Classifier.load(file);
    const fromZoo = await Classifier.load('effnet-shapes');
    try {
      expect(fromOnnx.labels).toEqual(fromZoo.labels);
      expect(fromOnnx.preprocessing).toEqual(fromZoo.preprocessing);
      const images = await shapes();
      const [a, b] = [await fromOnnx.classify(images, { topK: 3 }), await fromZoo.classify(images, { topK: 3 })];
      expect(a.results).toHaveLength(6);
      expect(a.results.map((r) => r.top.map((t) => t.label))).toEqual(b.results.map((r) => r.top.map((t) => t.label)));
      a.results.forEach((r, i) => r.top.forEach((t, j) => expect(t.prob).toBeCloseTo(b.results[i]!.top[j]!.prob, 5)));
    } finally {
      await Promise.all([fromOnnx.dispose(), fromZoo.dispose()]);
    }
  });

  it('an int8 export of effnet-shapes, calibrated on its own preprocessing, agrees with fp32 on fresh images', async () => {
    const m = await loadModelWeights('effnet-shapes');
    const pngs = async (seed: number, n: number) => Promise.all(Array.from({ length: n }, (_, i) => sharp(Buffer.from(generateShape(seed, i, { size: 48 }).data), { raw: { width: 48, height: 48, channels: 3 } }).png().toBuffer()));
    const calibration = await pngs(61, 48);
    const ranges = await calibrateInt8(m.graph, m.weights, async function* () {
      for (let s = 0; s < calibration.length; s += 16) yield (await preprocessBatch(calibration.slice(s, s + 16), m.preprocessing)).tensor;
    });
    const file = join(dir, 'shapes-int8.onnx');
    writeFileSync(file, compileToOnnx(m.graph, m.weights, { int8: { ranges }, metadata: onnxExportMetadata(m, { file, precision: 'int8' }) }).model);
    expect((await loadOnnxModel(file)).precision).toBe('int8');
    const heldOut = await pngs(62, 120);
    const truth = Array.from({ length: 120 }, (_, i) => generateShape(62, i, { size: 48 }).label);
    const [q, f] = [await Classifier.load(file), await Classifier.load(join(dir, 'shapes.onnx'))];
    try {
      const [a, b] = [await q.classify(heldOut, { topK: 1 }), await f.classify(heldOut, { topK: 1 })];
      const top = (r: typeof a) => r.results.map((x) => x.top[0]!.index);
      const agree = top(a).filter((c, i) => c === top(b)[i]).length / 120;
      const acc = (r: typeof a) => top(r).filter((c, i) => c === truth[i]).length / 120;
      console.info(`effnet-shapes int8 vs fp32 on 120 fresh images: top-1 agreement ${(100 * agree).toFixed(1)}%, accuracy ${(100 * acc(a)).toFixed(1)}% vs ${(100 * acc(b)).toFixed(1)}%`);
      expect(agree).toBeGreaterThanOrEqual(0.95);
      expect(acc(a)).toBeGreaterThanOrEqual(acc(b) - 0.03);
      // Through the compiled-model cache: the second load opens ORT's optimized int8 model (.ort) in place, and both
      // give exactly the logits of the uncached session.
      const { graph, onnx } = await loadOnnxModel(file);
      const batch = (await preprocessBatch(heldOut.slice(0, 8), m.preprocessing)).tensor;
      const cache = mkdtempSync(join(tmpdir(), 'effnet-int8-cache-'));
      for (const expectCached of [false, true]) {
        const r = await new OnnxBackend().loadOnnx(onnx, graph, { compiledCache: cache } as never);
        expect(r.notes.join('; ').includes('optimized model from the cache')).toBe(expectCached);
        expect((await r.run(batch)).logits!.data).toEqual((await q.logits(batch)).data);
        await r.dispose();
      }
    } finally {
      await Promise.all([q.dispose(), f.dispose()]);
    }
  });

  it('a dynamic-size export takes the size asked for; a fixed-size one refuses another size, naming both', async () => {
    const fixed = join(dir, 'shapes.onnx');
    await expect(loadModelWeights(fixed, { inputResolution: 64 })).rejects.toThrow(/takes 48x48 inputs .* export with --dynamic \(or --resolution 64\)/);
    const dynamic = await exportModel('effnet-shapes', 'dynamic.onnx', { inputResolution: null });
    const m = await loadModelWeights(dynamic, { inputResolution: [40, 56] });
    expect(m.graph.inputs[0]).toMatchObject({ height: 40, width: 56 });
    const runner = await loadRunner(m);
    try {
      const n = seededNormal(1);
      const out = await runner.run(float32Tensor([2, 3, 40, 56], Float32Array.from({ length: 2 * 3 * 40 * 56 }, () => n())));
      expect(out.logits!.shape).toEqual([2, 6]);
    } finally {
      await runner.dispose();
    }
  });

  it('a detector exported as .onnx detects as the detector it came from', async () => {
    const file = await exportModel('tf_efficientdet_lite0', 'det.onnx', { inputResolution: 64 });
    const image = { ...generateShape(3, 1, { size: 48 }), width: 48, height: 48 };
    const a = await Detector.load(file);
    const b = await Detector.load('tf_efficientdet_lite0', { inputSize: 64 });
    try {
      expect(a.random).toBe(true);
      const [ra, rb] = [await a.detect([image], { score: 0, maxDetections: 5 }), await b.detect([image], { score: 0, maxDetections: 5 })];
      expect(ra.results[0]!.detections.map((d) => d.classId)).toEqual(rb.results[0]!.detections.map((d) => d.classId));
      ra.results[0]!.detections.forEach((d, i) => expect(d.score).toBeCloseTo(rb.results[0]!.detections[i]!.score, 4));
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
    await expect(Classifier.load(file)).rejects.toThrow(/this ONNX file is a detection model \(use effnet detect\)/);
  });

  it('an .onnx without effnet metadata is an error that says what is missing; so is a file that is not ONNX', async () => {
    const plain = join(dir, 'plain.onnx');
    writeFileSync(plain, encodeModel({ irVersion: 8, opset: 17, producerName: 'pytorch', producerVersion: '1.13', docString: '', graphName: 'g', nodes: [], initializers: [], inputs: [], outputs: [], metadata: { author: 'me' } }));
    await expect(loadModelWeights(plain)).rejects.toThrow(OnnxModelError);
    await expect(loadModelWeights(plain)).rejects.toThrow(/plain\.onnx is not a self-describing effnet model: its metadata_props \(author\) lack "effnet\.model_card" .*written by pytorch 1\.13.*effnet export/);
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, 'this is not protobuf at all');
    await expect(loadModelWeights(junk)).rejects.toThrow(/junk\.onnx: not an ONNX model/);
    await expect(loadModelWeights(join(dir, 'shapes.onnx'), { weights: 'w.safetensors' })).rejects.toThrow(/is an ONNX file and brings its own weights/);
    await expect(Classifier.load(join(dir, 'shapes.onnx'), { backend: 'tfjs' })).rejects.toThrow(/is an ONNX file, which runs on ONNX Runtime/);
  });
});
