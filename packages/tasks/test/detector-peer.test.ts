import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy } from '@effnet/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { noisePng } from '../../../testing/images.js';
import { describeWithPeers, effdetFixture, runPython } from '../../../testing/peers.js';
import { decodeImage } from '../src/images/decode.js';
import { Detector } from '../src/detection/detector.js';
import { letterbox } from '../src/detection/letterbox.js';

/** Noise images of sizes that letterbox both ways (wide, tall), as PNG files both sides read. */
async function images(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const [w, h, seed] of [
    [300, 200, 1],
    [150, 260, 2],
  ]) {
    out.push(await noisePng(join(dir, `noise_${w}x${h}.png`), w!, h!, seed!));
  }
  return out;
}

/**
 * effdet's own evaluation path (PIL, transforms_coco_eval, PrefetchLoader, DetBenchPredict with img_info;
 * scripts/effdet_detect_reference.py) against effnet's Detector, on effdet's random non-trivial weights: the same
 * input tensor, and the same detections in original-image pixels.
 */
describeWithPeers(['torch', 'effdet'], "Detector against effdet's evaluation path", () => {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-detector-peer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const model of ['tf_efficientdet_lite0', 'tf_efficientdet_d0']) {
    let files: string[] = [];
    let ref = '';
    let detector: Detector;
    beforeAll(async () => {
      files = await images(dir);
      const fx = effdetFixture(model);
      ref = join(dir, model);
      runPython('scripts/effdet_detect_reference.py', ['--model', model, '--weights', fx.weights, '--out', ref, ...files]);
      detector = await Detector.load(model, { weights: fx.weights, weightsFormat: 'effdet', threads: 2 });
    });
    afterAll(() => detector?.dispose());

    it(`${model}: letterbox and normalisation give effdet's input tensor exactly`, async () => {
      const want = await readNpy(join(ref, 'input.npy'));
      const [h, w] = detector.inputSize;
      expect(want.shape).toEqual([2, 3, h, w]);
      for (let i = 0; i < files.length; i++) {
        const got = letterbox(await decodeImage(files[i]!), [h, w], detector.preprocessing).data;
        const plane = 3 * h * w;
        let diff = 0;
        for (let k = 0; k < plane; k++) diff = Math.max(diff, Math.abs(got[k]! - (want.data as Float32Array)[i * plane + k]!));
        expect(diff, files[i]).toBe(0);
      }
    });

    // D0's fixture logits reach 31 (sigmoid 1 in float32): dozens of tied scores whose order effdet's sort leaves open,
    // so the detections are compared on Lite0, whose scores are distinct; D0 checks the ImageNet-mean input above.
    if (model === 'tf_efficientdet_lite0') it(`${model}: the same detections in original pixels (score 1e-4, box 1e-3 of the image)`, async () => {
      const want = await readNpy(join(ref, 'detections.npy'));
      const rows = want.data as Float32Array;
      const { results } = await detector.detect(files, { score: 0 });
      results.forEach((r, b) => {
        const tol = 1e-3 * Math.max(r.width, r.height);
        // effdet's top 25: each found among ours with the same class, a box within tol and a score within 1e-4 (equal
        // scores may come in another order after float32 differences of the two runtimes).
        for (let i = 0; i < 25; i++) {
          const [x1, y1, x2, y2, score, cls] = rows.subarray((b * 100 + i) * 6, (b * 100 + i + 1) * 6);
          const match = r.detections.find((d) => d.classId === cls && Math.abs(d.score - score!) <= 1e-4 && d.box.every((v, k) => Math.abs(v - [x1!, y1!, x2!, y2!][k]!) <= tol));
          expect(match, `${r.name} effdet row ${i}: class ${cls} score ${score} box ${[x1, y1, x2, y2].map((v) => v!.toFixed(2))}`).toBeDefined();
        }
        expect(r.detections).toHaveLength(100);
        expect(r.detections[0]!.score).toBeCloseTo(rows[b * 600 + 4]!, 4);
      });
    });
  }
});
