import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileToOnnx } from '@effnet/backend-onnx';
import { buildEfficientDet, detectorConfig, float32Tensor, type Graph, randomWeights, seededNormal, type Tensor, type TensorMap } from '@effnet/core';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../../testing/peers.js';
import { generateAnchors } from './anchors.js';
import { detectionNmsExtension, NMS_OUTPUTS } from './onnx-nms.js';
import { postprocessDetections } from './postprocess.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-onnx-nms-'));

/**
 * Random weights whose class logits vary from place to place (the class prediction conv scaled up) around biases
 * spread per class (N(-4, 1)): a few hundred distinct scores above the thresholds, not one class tied everywhere.
 */
function detectorWeights(graph: Graph, seed: number): TensorMap {
  const w = randomWeights(graph, seed);
  const weight = w.get('class_net.predict.conv_pw.weight')!.data as Float32Array;
  for (let i = 0; i < weight.length; i++) weight[i] = weight[i]! * 8;
  const bias = w.get('class_net.predict.conv_pw.bias')!.data as Float32Array;
  const n = seededNormal(seed + 1);
  for (let i = 0; i < bias.length; i++) bias[i] = -4 + n();
  return w;
}

function input(batch: number, size: number, seed: number): Tensor {
  const n = seededNormal(seed);
  return float32Tensor([batch, 3, size, size], Float32Array.from({ length: batch * 3 * size * size }, () => n()));
}

interface Case {
  model: string;
  size: number;
  score: number;
  max: number;
}

/** The detector compiled with NMS in the graph and its raw outputs kept, run once on ORT. */
async function runBoth(graph: Graph, weights: TensorMap, x: Tensor, c: Case) {
  const ext = detectionNmsExtension(graph, { scoreThreshold: c.score, maxDetections: c.max });
  const compiled = compileToOnnx(graph, weights, { extend: (info) => ({ ...ext(info), keepGraphOutputs: true }) });
  const session = await ort.InferenceSession.create(compiled.model, { intraOpNumThreads: 2 });
  try {
    return { compiled, out: await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) }) };
  } finally {
    await session.release();
  }
}

describe('NMS in the ONNX graph', () => {
  const cases: Case[] = [
    { model: 'tf_efficientdet_d0', size: 512, score: 0.05, max: 100 },
    { model: 'tf_efficientdet_lite0', size: 320, score: 0.3, max: 20 },
  ];
  for (const c of cases) {
    it(`${c.model}: the same detections as the TypeScript path on the raw outputs (score > ${c.score}, at most ${c.max})`, async () => {
      const graph = buildEfficientDet(detectorConfig(c.model));
      const weights = detectorWeights(graph, 11);
      const x = input(2, c.size, 5);
      const { compiled, out } = await runBoth(graph, weights, x, c);
      expect(compiled.outputNames).toEqual([...graph.outputs, ...NMS_OUTPUTS]);
      const levels = [3, 4, 5, 6, 7];
      const toTensor = (t: ort.Tensor): Tensor => ({ dtype: 'float32', shape: t.dims.map(Number), data: t.data as Float32Array });
      const anchors = generateAnchors({ minLevel: 3, maxLevel: 7, numScales: 3, aspectRatios: detectorConfig(c.model).aspectRatios, anchorScale: detectorConfig(c.model).anchorScale, imageSize: c.size });
      const want = postprocessDetections(
        levels.map((l) => toTensor(out[`class_P${l}`]!)),
        levels.map((l) => toTensor(out[`box_P${l}`]!)),
        { anchors, numClasses: 90, maxDetectionsPerImage: c.max },
      );
      expect(out.boxes!.dims).toEqual([2, c.max, 4]);
      expect(out.classes!.type).toBe('int64');
      const num = out.num_detections!.data as BigInt64Array;
      const boxes = out.boxes!.data as Float32Array;
      const scores = out.scores!.data as Float32Array;
      const classes = out.classes!.data as BigInt64Array;
      for (let b = 0; b < 2; b++) {
        const w = want[b]!;
        const kept = Array.from(w.scores).filter((s) => s > c.score).length;
        expect(Number(num[b]), `image ${b}`).toBe(kept);
        expect(kept).toBeGreaterThan(3);
        for (let i = 0; i < c.max; i++) {
          const o = b * c.max + i;
          if (i >= kept) {
            expect([scores[o], Number(classes[o]), ...boxes.subarray(o * 4, o * 4 + 4)]).toEqual([0, 0, 0, 0, 0, 0]);
            continue;
          }
          expect(Number(classes[o]), `image ${b} detection ${i}`).toBe(w.classes[i]);
          expect(Math.abs(scores[o]! - w.scores[i]!)).toBeLessThanOrEqual(1e-6);
          for (let k = 0; k < 4; k++) expect(Math.abs(boxes[o * 4 + k]! - w.boxes[i * 4 + k]!)).toBeLessThanOrEqual(1e-4 * c.size);
        }
      }
    });
  }

  it('names what it cannot export', () => {
    const dynamic = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { inputResolution: null });
    expect(() => detectionNmsExtension(dynamic)).toThrow(/input size: "dynamic" \(a fixed size: the anchors become constants/);
    const g = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { inputResolution: 128 });
    expect(() => detectionNmsExtension(g, { scoreThreshold: 1 })).toThrow(/score threshold: 1/);
    expect(() => detectionNmsExtension(g, { maxDetections: 0 })).toThrow(/max detections: 0/);
  });
});

describeWithPeers(['onnx'], 'the NMS export and the ONNX checker', () => {
  it('passes onnx.checker full_check (shape inference through TopK, NonMaxSuppression, ScatterND)', () => {
    const graph = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { inputResolution: 256 });
    const compiled = compileToOnnx(graph, randomWeights(graph, 2), { extend: detectionNmsExtension(graph) });
    const file = join(dir, 'lite0_nms.onnx');
    writeFileSync(file, compiled.model);
    expect(runPython('scripts/onnx_check.py', [file])).toMatch(/^ok opset 17/);
  });
});
