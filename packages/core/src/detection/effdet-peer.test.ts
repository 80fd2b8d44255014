import { expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../../testing/peers.js';
import { bindWeights, buildEfficientDet, countParameters, detectorConfig, DETECTORS, specFor, type TensorMap, toCanonicalNames } from '../index.js';

type Reference = Record<string, { params: number; state: Record<string, number[]> }>;

/** effdet's state_dict as a TensorMap of the right shapes; the values are never read. */
const shapesOnly = (state: Record<string, number[]>): TensorMap =>
  new Map(Object.entries(state).map(([name, shape]) => [name, { dtype: 'float32', shape, data: new Float32Array(0) }]));

/**
 * Every named EfficientDet against effdet's own modules (create_model, pretrained=False, pretrained_backbone=False),
 * with 90 classes and, for two of them, 3 (effdet's reset_head): parameter count, and every state_dict name and
 * shape through the "effdet" weight naming.
 */
describeWithPeers(['torch', 'effdet'], 'EfficientDet architecture against effdet', () => {
  it('every named detector has effdet\'s parameter count, names and shapes; --num-classes changes the class net as effdet\'s', () => {
    const entries: [string, number][] = [...DETECTORS.map((d): [string, number] => [d.name, 90]), ['tf_efficientdet_lite0', 3], ['efficientdet_d0', 3]];
    const key = ([name, classes]: [string, number]) => (classes === 90 ? name : `${name}:${classes}`);
    const ref = JSON.parse(runPython('scripts/effdet_reference.py', ['names', '--models', entries.map(key).join(',')])) as Reference;
    for (const entry of entries) {
      const config = detectorConfig(entry[0]);
      const graph = buildEfficientDet(config, { numClasses: entry[1] });
      const want = ref[key(entry)]!;
      expect([key(entry), countParameters(graph)]).toEqual([key(entry), want.params]);
      const canonical = toCanonicalNames('effdet', specFor(config.backbone), shapesOnly(want.state));
      // bindWeights reports every missing, unexpected and mis-shaped name at once.
      expect(() => bindWeights(graph, canonical), key(entry)).not.toThrow();
      expect(canonical.size, key(entry)).toBe(graph.parameters.length);
    }
  });
});
