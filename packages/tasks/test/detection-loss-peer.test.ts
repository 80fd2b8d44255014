import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackend } from '@effnet/backend-onnx';
import { buildEfficientDet, detectorConfig, readNpy, readSafetensors } from '@effnet/core';
import { expect, it } from 'vitest';
import { describeWithPeers, scriptFixture } from '../../../testing/peers.js';
import { detectorAnchors } from '../src/detection/anchors.js';
import { detectionLoss, detectionTargets } from '../src/detection/training.js';

/**
 * The detection loss end to end against effdet: the same weights, input and boxes; effdet's train-mode forward,
 * AnchorLabeler and DetectionLoss on one side; effnet's anchor labeler, target tensors, loss spec and the ONNX
 * training graph's train-mode forward (one step's loss, computed before the update) on the other.
 */
describeWithPeers(['torch', 'effdet'], "the detection loss equals effdet's DetectionLoss", () => {
  it('tf_efficientdet_lite0 at 128 px, 3 classes, two images of random boxes', async () => {
    const dir = scriptFixture('scripts/effdet_reference.py', ['effdet-loss', 'lite0', 128, 3], (out) => ['loss', '--model', 'tf_efficientdet_lite0', '--out', out, '--image-size', '128', '--num-classes', '3']);
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    const graph = buildEfficientDet({ ...detectorConfig('tf_efficientdet_lite0'), imageSize: [128, 128], backboneDropPath: 0 }, { numClasses: 3 });
    const { tensors } = await readSafetensors(join(dir, 'weights.safetensors'));
    const targets = detectionTargets(detectorAnchors(graph), 3, meta.images);
    expect((targets.num_positives!.data as Float32Array)[0]).toBe(meta.num_positives.reduce((a: number, b: number) => a + b, 0) + 1);
    const session = await new OnnxBackend().createTrainer(graph, tensors, { optimizer: { kind: 'sgd', lr: 1e-9 }, loss: detectionLoss(graph), seed: 0, device: 'cpu', threads: 2 });
    try {
      const r = await session.stepWith(await readNpy(join(dir, 'input.npy')), targets);
      console.info(`effnet ${r.loss} effdet ${meta.loss} (class ${meta.class_loss}, box ${meta.box_loss})`);
      expect(Math.abs(r.loss - meta.loss) / meta.loss).toBeLessThan(1e-4);
    } finally {
      session.dispose();
    }
  });
});
