import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientDet, buildEfficientNet, buildSegmenter, detectorConfig, randomWeights, segmenterConfig, specFor, WeightMismatchError, writeSafetensors } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { detectorForFile, loadModelWeights, resolveModel } from './resolve.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-resolve-'));

describe('resolving segmenters', () => {
  it('<decoder>_<variant> is a segmenter: random with --num-classes, or a weight file in smp names with its classes', async () => {
    expect(await resolveModel('fpn_efficientnet_b0')).toMatchObject({ kind: 'segmenter', config: { name: 'fpn_efficientnet_b0', encoder: 'efficientnet_b0' } });
    const random = await loadModelWeights('unet_efficientnet_phi-3', { numClasses: 4, inputResolution: 64 });
    expect(random).toMatchObject({ random: true, segmenter: { decoder: { kind: 'unet' } }, preprocessing: { inputSize: 64, cropMode: 'squash' } });
    expect(random.graph.metadata.numClasses).toBe(4);
    const file = join(dir, 'smp-unet.safetensors');
    await writeSafetensors(file, randomWeights(buildSegmenter(segmenterConfig('unet_efficientnet_phi-3'), { numClasses: 5 }), 3));
    const m = await loadModelWeights('unet_efficientnet_phi-3', { weights: file, weightsFormat: 'smp', inputResolution: 64 });
    expect(m.graph.metadata.numClasses).toBe(5);
    await expect(loadModelWeights('unet_efficientnet_phi-3', { weights: file, weightsFormat: 'smp', numClasses: 3 })).rejects.toThrow(/--num-classes.*5, the classes of/);
    await expect(loadModelWeights('fpn_efficientnet_phi-3', { weights: file, weightsFormat: 'smp' })).rejects.toThrow(WeightMismatchError);
    await expect(loadModelWeights('unet_efficientnet_phi-3', { weights: file, weightsFormat: 'torchvision' })).rejects.toThrow(/effnet or smp for a segmenter/);
  });
});

describe('resolving detectors', () => {
  it('an architecture name is a detector, a .coco name a detection zoo entry', async () => {
    expect(await resolveModel('tf_efficientdet_d0')).toMatchObject({ kind: 'detector', config: { name: 'tf_efficientdet_d0' } });
    const ref = await resolveModel('tf_efficientdet_d0.coco');
    expect(ref).toMatchObject({ kind: 'pretrained', entry: { task: 'detection', arch: 'tf_efficientdet_d0', labels: 'coco-90' } });
  });

  it("gives a detector effdet's preprocessing at the graph's input size", async () => {
    const lite = await loadModelWeights('tf_efficientdet_lite0', { inputResolution: 256 });
    expect(lite).toMatchObject({ random: true, detector: { name: 'tf_efficientdet_lite0' }, preprocessing: { inputSize: 256, interpolation: 'bicubic', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } });
    const d0 = await loadModelWeights('efficientdet_d0');
    expect(d0.preprocessing).toEqual({ inputSize: 512, interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });

  it("takes a detector's weight file as the model: the detector its tensors fit, the class count they have", async () => {
    const graph = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { numClasses: 3, inputResolution: 64 });
    const file = join(dir, 'my-detector.safetensors');
    await writeSafetensors(file, randomWeights(graph, 2));
    const m = await loadModelWeights(file, { inputResolution: 64 });
    expect(m).toMatchObject({ ref: { kind: 'checkpoint', path: file }, random: false, detector: { name: 'tf_efficientdet_lite0' }, weightsFile: file });
    expect(m.graph.metadata.numClasses).toBe(3);
    expect(m.notes).toContain("the weights are tf_efficientdet_lite0's");
    // As --weights of the architecture, the same; of another detector, a mismatch that names the right one.
    expect((await loadModelWeights('tf_efficientdet_lite0', { weights: file, inputResolution: 64 })).graph.metadata.numClasses).toBe(3);
    await expect(loadModelWeights('tf_efficientdet_lite1', { weights: file })).rejects.toThrow(WeightMismatchError);
    await expect(loadModelWeights('tf_efficientdet_lite1', { weights: file })).rejects.toThrow(/holds the weights of tf_efficientdet_lite0, not tf_efficientdet_lite1/);
  });

  it('tells D6 from D7 (same tensors) by the file name, and asks when it cannot', () => {
    const both = ['tf_efficientdet_d6', 'tf_efficientdet_d7'];
    expect(detectorForFile(both, '/x/tf_efficientdet_d7_53-6d1d7a95.pth')).toBe('tf_efficientdet_d7');
    expect(detectorForFile(both, 'TF_EFFICIENTDET_D6.pth')).toBe('tf_efficientdet_d6');
    expect(detectorForFile(both, 'tf_efficientdet_d7x-f390b87c.pth')).toBeUndefined();
    expect(detectorForFile(both, 'weights.pth')).toBeUndefined();
    expect(detectorForFile(['efficientdet_d0'], 'anything.pth')).toBe('efficientdet_d0');
    expect(detectorForFile([], 'anything.pth')).toBeUndefined();
  });

  it("a classifier's weight file without a card is still a checkpoint that needs its card", async () => {
    const g = buildEfficientNet(specFor('efficientnet_b0'), { numClasses: 2, inputResolution: 32 });
    const file = join(dir, 'b0.safetensors');
    await writeSafetensors(file, randomWeights(g));
    await expect(loadModelWeights(file)).rejects.toThrow(/cannot read the model card .*b0\.json/);
    writeFileSync(join(dir, 'notes.json'), '{}');
    await expect(loadModelWeights(join(dir, 'notes.json'))).rejects.toThrow(/is not an effnet model card/);
  });
});
