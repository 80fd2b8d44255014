import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientDet, detectorConfig, float32Tensor, type Runner, type Tensor } from '@effnet/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noiseImage, noisePng } from '../../../../testing/images.js';
import { ImageDecodeError } from '../images/errors.js';
import { COCO_90_LABELS } from '../labels/label-sets.js';
import type { ModelWeights } from '../models/resolve.js';
import { boxesToOriginal, EFFDET_FILL_COLOR, imageInfoFor, resizePad } from './augment-boxes.js';
import { Detector } from './detector.js';
import { letterbox, writeEffdetNormalized } from './letterbox.js';
import { postprocessDetections } from './postprocess.js';

const f = Math.fround;


const dir = mkdtempSync(join(tmpdir(), 'effnet-detector-'));

describe('letterbox', () => {
  it("normalises as effdet's PrefetchLoader: (v - 255 mean) / (255 std) in float32, on a canvas of the mean colour", () => {
    const p = { inputSize: 8, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };
    const out = new Float32Array(3);
    writeEffdetNormalized({ data: Uint8Array.from([0, 128, 255]), width: 1, height: 1 }, p, out);
    expect(out[0]).toBe(f(f(0 - f(0.485 * 255)) / f(0.229 * 255)));
    expect(out[1]).toBe(f(f(128 - f(0.456 * 255)) / f(0.224 * 255)));
    expect(out[2]).toBe(f(f(255 - f(0.406 * 255)) / f(0.225 * 255)));
    // A 4x2 image into 8x8: resized to 8x4, the rest is the fill colour (ImageNet mean: 124, 116, 104).
    const { data, info } = letterbox(noiseImage(4, 2, 1), [8, 8], p);
    expect(info).toMatchObject({ scale: 2, scaledWidth: 8, scaledHeight: 4 });
    const fill = new Float32Array(3);
    writeEffdetNormalized({ data: Uint8Array.from(EFFDET_FILL_COLOR), width: 1, height: 1 }, p, fill);
    for (let c = 0; c < 3; c++) for (let y = 4; y < 8; y++) for (let x = 0; x < 8; x++) expect(data[c * 64 + y * 8 + x]).toBe(fill[c]);
  });
});

/** A runner that returns fixed head outputs whatever the input (and records the inputs it saw). */
class FixedRunner implements Runner {
  readonly device = 'cpu';
  readonly notes: string[] = [];
  readonly inputs: Tensor[] = [];
  constructor(private readonly outputs: (batch: number) => Record<string, Tensor>) {}
  async run(input: Tensor): Promise<Record<string, Tensor>> {
    this.inputs.push(input);
    return this.outputs(input.shape[0]!);
  }
  dispose(): void {}
}

/** tf_efficientdet_lite0 at 128 with 3 classes: its graph only (the runner is a FixedRunner). */
function stubModel(): ModelWeights {
  const detector = detectorConfig('tf_efficientdet_lite0');
  const graph = buildEfficientDet(detector, { numClasses: 3, inputResolution: 128 });
  return {
    ref: { kind: 'detector', name: detector.name, config: detector },
    spec: undefined as never,
    detector,
    graph,
    weights: new Map(),
    random: false,
    preprocessing: { inputSize: 128, interpolation: 'bicubic', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    notes: [],
  };
}

/** Head outputs with every logit at -10 and no box regression, but one strong logit at (level, y, x, anchor, class). */
function oneHot(detector: Detector, at: { level: number; y: number; x: number; a: number; c: number }): (batch: number) => Record<string, Tensor> {
  const anchors = detector.anchors();
  const C = detector.numClasses;
  const A = anchors.anchorsPerLocation;
  return (batch) => {
    const out: Record<string, Tensor> = {};
    anchors.levels.forEach((lv, l) => {
      const cls = float32Tensor([batch, A * C, lv.height, lv.width], new Float32Array(batch * A * C * lv.height * lv.width).fill(-10));
      if (l === at.level) for (let b = 0; b < batch; b++) (cls.data as Float32Array)[((b * A * C + at.a * C + at.c) * lv.height + at.y) * lv.width + at.x] = 4;
      out[`class_P${lv.level}`] = cls;
      out[`box_P${lv.level}`] = float32Tensor([batch, A * 4, lv.height, lv.width]);
    });
    return out;
  };
}

describe('Detector (on fixed head outputs)', () => {
  it('maps boxes back to original pixels exactly through the letterbox, for any image size', async () => {
    const model = stubModel();
    const probe = new Detector(new FixedRunner(() => ({})), model, ['a', 'b', 'c']);
    const anchors = probe.anchors();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 4, max: 300 }),
        fc.integer({ min: 4, max: 300 }),
        fc.integer({ min: 0, max: 4 }),
        fc.nat(),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 2 }),
        async (width, height, level, cell, a, c) => {
          const lv = anchors.levels[level]!;
          const y = cell % lv.height;
          const x = Math.floor(cell / lv.height) % lv.width;
          const detector = new Detector(new FixedRunner(oneHot(probe, { level, y, x, a, c })), model, ['a', 'b', 'c']);
          const image = noiseImage(width, height, cell);
          const { results } = await detector.detect([{ ...image, name: 'img' }], { score: 0.5 });
          expect(results).toHaveLength(1);
          const r = results[0]!;
          expect(r).toMatchObject({ name: 'img', index: 0, width, height });
          const { info } = resizePad({ image, boxes: [], classes: [] }, { size: 128 });
          // The anchor (no regression), clipped to the letterboxed image (effdet's img_size / img_scale), in original pixels.
          const i = lv.offset + (y * lv.width + x) * anchors.anchorsPerLocation + a;
          const [y1, x1, y2, x2] = anchors.boxes.subarray(i * 4, i * 4 + 4);
          const { imgScale, imgSize } = imageInfoFor(info);
          const bound = [f(f(imgSize[0]) / f(imgScale)), f(f(imgSize[1]) / f(imgScale))];
          const clipped: [number, number, number, number] = [
            Math.min(Math.max(x1!, 0), bound[0]!),
            Math.min(Math.max(y1!, 0), bound[1]!),
            Math.min(Math.max(x2!, 0), bound[0]!),
            Math.min(Math.max(y2!, 0), bound[1]!),
          ];
          const want = boxesToOriginal([clipped], info)[0]!;
          if (clipped[0] === clipped[2] || clipped[1] === clipped[3]) return;
          const d = r.detections.find((q) => q.classId === c + 1)!;
          expect(d.label).toBe(['a', 'b', 'c'][c]);
          expect(d.score).toBe(f(1 / (1 + Math.exp(-4))));
          // Decoding recomputes the anchor in float32, and effdet scales by a float32 img_scale: a few ulps.
          d.box.forEach((v, k) => expect(Math.abs(v - want[k]!)).toBeLessThanOrEqual(1e-4 * Math.max(width, height)));
          // Inside the original image, and the bound is the letterboxed content, not the canvas.
          expect(d.box[0]).toBeGreaterThanOrEqual(0);
          expect(d.box[2]).toBeLessThanOrEqual(width * (1 + 1e-6));
          expect(d.box[3]).toBeLessThanOrEqual(height * (1 + 1e-6));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('reports an image that cannot be decoded and detects the rest with skipErrors; without, names it', async () => {
    const model = stubModel();
    const probe = new Detector(new FixedRunner(() => ({})), model, []);
    const runner = new FixedRunner(oneHot(probe, { level: 2, y: 1, x: 1, a: 0, c: 1 }));
    const detector = new Detector(runner, model, []);
    const good = await noisePng(join(dir, 'good.png'), 40, 30, 2);
    const bad = join(dir, 'bad.png');
    writeFileSync(bad, 'not an image');
    const { results, errors } = await detector.detect([good, bad, { source: good, name: 'again' }], { skipErrors: true });
    expect(results.map((r) => [r.name, r.index, r.width, r.height])).toEqual([
      [good, 0, 40, 30],
      ['again', 2, 40, 30],
    ]);
    expect(results[0]!.detections[0]).toMatchObject({ label: 'class 2', classId: 2 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ index: 1, name: bad });
    expect(errors[0]!.error).toBeInstanceOf(ImageDecodeError);
    expect(runner.inputs.map((t) => t.shape)).toEqual([[2, 3, 128, 128]]);
    await expect(detector.detect([good, bad])).rejects.toThrow(/cannot decode image .*bad\.png/);
  });

  it('takes tensors at the input size (detections in their own pixels) and names inputs that do not fit', async () => {
    const model = stubModel();
    const probe = new Detector(new FixedRunner(() => ({})), model, []);
    const detector = new Detector(new FixedRunner(oneHot(probe, { level: 1, y: 3, x: 2, a: 4, c: 0 })), model, []);
    const t = float32Tensor([3, 128, 128]);
    const { results } = await detector.detect([t, float32Tensor([1, 3, 128, 128])], { score: 0.5, batchSize: 1 });
    expect(results.map((r) => [r.name, r.width, r.height, r.detections.length])).toEqual([
      ['<tensor 0>', 128, 128, 1],
      ['<tensor 1>', 128, 128, 1],
    ]);
    await expect(detector.detect([float32Tensor([3, 64, 64])])).rejects.toThrow(/images\[0\]: .*a float32 tensor \[3, 128, 128\] already letterboxed/);
    await expect(detector.detect([{ data: new Uint8Array(5), width: 2, height: 2 }])).rejects.toThrow(/images\[0\].*width \* height \* 3 bytes/);
    await expect(detector.detect([t], { score: 2 })).rejects.toThrow(/score: 2 \(a threshold in \[0, 1\]\)/);
    await expect(detector.detect([t], { nms: 'fast' as never })).rejects.toThrow(/nms/);
  });
});

describe('Detector.load', () => {
  let d0: Detector;
  beforeAll(async () => {
    d0 = await Detector.load('tf_efficientdet_d0', { threads: 2 });
  });
  afterAll(() => d0?.dispose());

  it("on random-weight tf_efficientdet_d0 gives exactly the TypeScript post-processing of the runner's raw outputs", async () => {
    expect(d0.random).toBe(true);
    expect(d0.inputSize).toEqual([512, 512]);
    expect(d0.labelOf(1)).toBe('class 1');
    const a = noiseImage(300, 200, 5);
    const b = noiseImage(150, 260, 6);
    const file = await noisePng(join(dir, 'b.png'), 150, 260, 6);
    const { results, errors } = await d0.detect([{ ...a, name: 'a' }, file], { score: 0 });
    expect(errors).toEqual([]);
    // The same by hand: letterbox, the raw outputs, postprocessDetections with each image's img_info.
    const la = letterbox(a, [512, 512], d0.preprocessing);
    const lb = letterbox(b, [512, 512], d0.preprocessing);
    const batch = float32Tensor([2, 3, 512, 512]);
    (batch.data as Float32Array).set(la.data, 0);
    (batch.data as Float32Array).set(lb.data, 3 * 512 * 512);
    const { classes, boxes } = await d0.headOutputs(batch);
    const want = postprocessDetections(classes, boxes, { anchors: d0.anchors(), numClasses: 90, imageInfo: [imageInfoFor(la.info), imageInfoFor(lb.info)] });
    results.forEach((r, k) => {
      expect(r.detections).toHaveLength(want[k]!.count);
      expect(r.detections.length).toBe(100);
      r.detections.forEach((d, i) => {
        expect(d.score).toBe(want[k]!.scores[i]);
        expect(d.classId).toBe(want[k]!.classes[i]);
        expect(d.label).toBe(`class ${d.classId}`);
        expect(d.box).toEqual(Array.from(want[k]!.boxes.subarray(i * 4, i * 4 + 4)));
      });
    });
    expect(results.map((r) => [r.name, r.width, r.height])).toEqual([
      ['a', 300, 200],
      [file, 150, 260],
    ]);
    // The score threshold and the cap only cut the same list.
    const top = await d0.detect([{ ...a, name: 'a' }], { score: results[0]!.detections[9]!.score, maxDetections: 50 });
    expect(top.results[0]!.detections).toEqual(results[0]!.detections.slice(0, 10));
  });

  it('names what is not a detector, and labels that do not fit', async () => {
    await expect(Detector.load('efficientnet_b0')).rejects.toThrow(/model: "efficientnet_b0" \(a detector: .*this is a classifier/);
    // A classifier zoo entry is refused before its weights are pulled (offline, nothing cached: a pull would fail).
    const env = { EFFNET_OFFLINE: '1', EFFNET_CACHE: mkdtempSync(join(tmpdir(), 'effnet-empty-cache-')) };
    await expect(Detector.load('efficientnet_b0.ra_in1k', { env })).rejects.toThrow(/model: "efficientnet_b0\.ra_in1k" \(a detector: /);
    await expect(Detector.load('tf_efficientdet_lite0', { labels: 'imagenet-1k', inputSize: 128 })).rejects.toThrow(/labels: "imagenet-1k" \(90 class names/);
    const lite = await Detector.load('tf_efficientdet_lite0', { labels: 'coco-90', inputSize: 128 });
    expect([lite.labelOf(1), lite.labelOf(90), lite.inputSize, lite.preprocessing.mean]).toEqual(['person', 'toothbrush', [128, 128], [0.5, 0.5, 0.5]]);
    await lite.dispose();
    expect(COCO_90_LABELS).toHaveLength(90);
  });

  it('gives the same detections on TensorFlow.js (wasm) as on ONNX Runtime, with hard and soft NMS', async () => {
    const image = { ...noiseImage(160, 100, 9), name: 'n' };
    const o = { inputSize: 128, threads: 2 } as const;
    const onnx = await Detector.load('tf_efficientdet_lite0', o);
    const tfjs = await Detector.load('tf_efficientdet_lite0', { ...o, backend: 'tfjs', device: 'wasm' });
    try {
      expect(tfjs.device).toBe('wasm');
      for (const nms of ['hard', 'soft'] as const) {
        const [a, b] = [await onnx.detect([image], { score: 0, maxDetections: 15, nms }), await tfjs.detect([image], { score: 0, maxDetections: 15, nms })];
        const [da, db] = [a.results[0]!.detections, b.results[0]!.detections];
        expect(da.length, nms).toBeGreaterThan(0);
        expect(db.map((d) => d.classId), nms).toEqual(da.map((d) => d.classId));
        db.forEach((d, i) => {
          expect(Math.abs(d.score - da[i]!.score)).toBeLessThanOrEqual(1e-4);
          d.box.forEach((v, k) => expect(Math.abs(v - da[i]!.box[k]!)).toBeLessThanOrEqual(1e-2));
        });
      }
    } finally {
      await onnx.dispose();
      await tfjs.dispose();
    }
  });
});
