import { expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../../testing/peers.js';
import { bindWeights, countParameters, specFor, type TensorMap, toCanonicalNames } from '../index.js';
import { buildSegmenter } from './segmenter.js';
import { segmenterConfig } from './decoder-configs.js';

type Reference = Record<string, { params: number; state: Record<string, number[]> }>;

const shapesOnly = (state: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(state).map(([name, shape]) => [name, { dtype: 'float32', shape, data: new Float32Array(0) }]));

/**
 * Every decoder on two encoders against smp's own modules (Unet, FPN, DeepLabV3Plus with timm-efficientnet-bN), and
 * bifpnseg against automl's head transcribed on effdet's backbone and BiFPN: parameter count, and every state_dict
 * name and shape through the "smp" naming.
 */
describeWithPeers(['torch', 'segmentation_models_pytorch', 'effdet'], 'segmenter architectures against smp', () => {
  it("U-Net, FPN and DeepLabV3+ on B0 and B1, and bifpnseg on d0 and lite0, have the reference's parameter count, names and shapes", () => {
    const entries: [string, number][] = [
      ['unet_efficientnet_b0', 3],
      ['fpn_efficientnet_b0', 3],
      ['deeplabv3plus_efficientnet_b0', 3],
      ['unet_efficientnet_b1', 4],
      ['fpn_efficientnet_b1', 1],
      ['deeplabv3plus_efficientnet_b1', 21],
      ['bifpnseg_efficientdet_d0', 3],
      ['bifpnseg_tf_efficientdet_lite0', 2],
    ];
    const key = ([name, classes]: [string, number]) => `${name}:${classes}`;
    const ref = JSON.parse(runPython('scripts/smp_reference.py', ['names', '--models', entries.map(key).join(',')])) as Reference;
    for (const entry of entries) {
      const config = segmenterConfig(entry[0]);
      const graph = buildSegmenter(config, { numClasses: entry[1] });
      const want = ref[key(entry)]!;
      expect([key(entry), countParameters(graph)]).toEqual([key(entry), want.params]);
      const canonical = toCanonicalNames('smp', specFor(config.encoder), shapesOnly(want.state));
      expect(() => bindWeights(graph, canonical), key(entry)).not.toThrow();
      expect(canonical.size, key(entry)).toBe(graph.parameters.length);
    }
  });
});
