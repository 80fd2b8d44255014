import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countParameters, inferShapes, InvalidSpecError, liveNodes, prepareForInference, randomWeights } from '../index.js';
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
        fc.constantFrom(...DECODER_KINDS),
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
