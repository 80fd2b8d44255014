import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileToOnnx, encodeModel } from '@effnet/backend-onnx';
import { float32Tensor, seededNormal } from '@effnet/core';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { generateShape } from '../data/shapes.js';
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
