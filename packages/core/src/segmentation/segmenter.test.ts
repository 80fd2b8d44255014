import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildEfficientDet, countParameters, detectorConfig, inferShapes, InvalidSpecError, liveNodes, prepareForInference, randomWeights } from '../index.js';
import { DECODER_KINDS, isSegmenterName, segmenterConfig } from './decoder-configs.js';
import { buildSegmenter, readSegmentationMetadata, SEGMENTATION_OUTPUT } from './segmenter.js';

describe('segmenters as data', () => {
  it("b0 with 3 classes has smp's parameter counts (FACTS.md)", () => {
    const params = (n: string) => countParameters(buildSegmenter(segmenterConfig(n), { numClasses: 3 }));
    expect(params('unet_efficientnet_b0')).toBe(6_251_759);
    expect(params('fpn_efficientnet_b0')).toBe(5_759_743);
    expect(params('deeplabv3plus_efficientnet_b0')).toBe(4_907_983);
  });

  it('logits have the classes and the input size for any decoder, encoder, size and class count', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DECODER_KINDS.filter((k) => k !== 'bifpnseg')),
        fc.constantFrom('efficientnet_b0', 'tf_efficientnet_lite0', 'efficientnet_phi-3'),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 30 }),
        (decoder, encoder, hk, wk, classes) => {
          const g = buildSegmenter(segmenterConfig(`${decoder}_${encoder}`), { numClasses: classes, inputResolution: [32 * hk, 32 * wk] });
          expect(g.outputs).toEqual([SEGMENTATION_OUTPUT]);
          expect(inferShapes(g, { batch: 2 }).get(SEGMENTATION_OUTPUT)).toEqual([2, classes, 32 * hk, 32 * wk]);
          expect(readSegmentationMetadata(g)).toMatchObject({ decoder, numClasses: classes });
        },
      ),
      { numRuns: 12 },
    );
  });

  it("bifpnseg: automl's head on a detector's BiFPN; logits at the input size for any detector, size (a multiple of 2^maxLevel) and classes", () => {
    fc.assert(
      fc.property(
        fc.constantFrom('efficientdet_d0', 'tf_efficientdet_lite0', 'efficientdet_phi-4', 'tf_efficientdet_d1'),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 30 }),
        (detector, hk, wk, classes) => {
          const config = segmenterConfig(`bifpnseg_${detector}`);
          const det = detectorConfig(detector);
          expect(config).toMatchObject({ detector: det.name, encoder: det.backbone });
          const g = buildSegmenter(config, { numClasses: classes, inputResolution: [128 * hk, 128 * wk] });
          const shapes = inferShapes(g, { batch: 2 });
          expect(shapes.get(SEGMENTATION_OUTPUT)).toEqual([2, classes, 128 * hk, 128 * wk]);
          // The head's logits before the resize sit at stride 2^(minLevel - 1) (P2 for P3..P7).
          const s = 2 ** (det.minLevel - 1);
          expect(shapes.get('seg_head.head_transpose')).toEqual([2, classes, (128 * hk) / s, (128 * wk) / s]);
          expect(readSegmentationMetadata(g)).toMatchObject({ decoder: 'bifpnseg', numClasses: classes });
          // The features are the detector's own parameters, under effdet's names; the head is new.
          const detParams = new Set(buildEfficientDet(det, { numClasses: 1 }).parameters.map((p) => p.name));
          for (const p of g.parameters) expect(p.name.startsWith('seg_head.') ? !detParams.has(p.name) : detParams.has(p.name), p.name).toBe(true);
        },
      ),
      { numRuns: 10 },
    );
    // 4 transposed convs + BN for P7..P4 (64 channels in d0) and the head on 128 channels: automl's head on d0 with 3 classes.
    const head = buildSegmenter(segmenterConfig('bifpnseg_efficientdet_d0'), { numClasses: 3 }).parameters.filter((p) => p.name.startsWith('seg_head.') && p.trainable);
    const n = head.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
    expect(n).toBe(64 * 64 * 9 + 3 * 128 * 64 * 9 + 4 * 2 * 64 + 128 * 3 * 9 + 3);
    expect(() => buildSegmenter(segmenterConfig('bifpnseg_efficientdet_d0'), { inputResolution: 96 })).toThrow(/multiple of 128/);
    expect(() => segmenterConfig('bifpnseg_efficientnet_b0')).toThrow(/EfficientDet/);
  });

  it("DeepLabV3+ dilates the encoder's last stride-2 stage (output stride 16); U-Net and FPN keep 32", () => {
    const deeplab = buildSegmenter(segmenterConfig('deeplabv3plus_efficientnet_b0'), { inputResolution: 64 });
    const shapes = inferShapes(deeplab, { batch: 1 });
    expect(shapes.get('encoder.blocks.6.0')).toEqual([1, 320, 4, 4]);
    const dw = deeplab.nodes.find((n) => n.name === 'encoder.blocks.5.0.conv_dw');
    expect(dw).toMatchObject({ stride: [1, 1], dilation: [2, 2] });
    const unet = buildSegmenter(segmenterConfig('unet_efficientnet_b0'), { inputResolution: 64 });
    expect(inferShapes(unet, { batch: 1 }).get('encoder.blocks.6.0')).toEqual([1, 320, 2, 2]);
  });

  it("keeps smp's unused encoder head for the weights, and inference drops it", () => {
    const g = buildSegmenter(segmenterConfig('unet_efficientnet_b0'), { numClasses: 2, inputResolution: 64 });
    expect(g.parameters.some((p) => p.name === 'encoder.conv_head.weight')).toBe(true);
    expect(liveNodes(g).has('encoder.conv_head')).toBe(false);
    const prepared = prepareForInference(g, randomWeights(g, 1));
    expect(prepared.graph.nodes.some((n) => n.name.startsWith('encoder.conv_head') || n.name.startsWith('encoder.bn2'))).toBe(false);
    expect(prepared.weights.has('encoder.conv_head.weight')).toBe(false);
  });

  it('names: decoder_encoder, canonical spellings; errors name the decoders or the encoder', () => {
    expect(segmenterConfig('UNet_EfficientNet-B1').name).toBe('unet_efficientnet_b1');
    expect(isSegmenterName('fpn_efficientnet_b0')).toBe(true);
    expect(isSegmenterName('efficientnet_b0')).toBe(false);
    expect(() => segmenterConfig('pspnet_efficientnet_b0')).toThrow(/unet, fpn, deeplabv3plus/);
    expect(() => segmenterConfig('unet_efficientnet_b9')).toThrow(InvalidSpecError);
    expect(() => buildSegmenter(segmenterConfig('unet_efficientnet_b0'), { inputResolution: 100 })).toThrow(/multiple of 32/);
  });
});
