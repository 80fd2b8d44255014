import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  analyzeGraph,
  bifpnNodes,
  boxOutputName,
  buildEfficientDet,
  CLASS_PRIOR_BIAS,
  classOutputName,
  countParameters,
  detectorConfig,
  detectorsFitting,
  DETECTORS,
  type Graph,
  isDetectorName,
  numel,
  randomWeights,
  readDetectionMetadata,
  UnknownVariantError,
  validateGraph,
} from '../index.js';

/** effdet's parameter counts with 90 classes (sum of p.numel() over model.parameters(); effdet-peer.test.ts checks them live). */
const EFFDET_PARAMS: Record<string, number> = {
  tf_efficientdet_d0: 3_880_067,
  tf_efficientdet_d1: 6_625_898,
  tf_efficientdet_d2: 8_097_039,
  tf_efficientdet_d3: 12_032_296,
  tf_efficientdet_d4: 20_723_675,
  tf_efficientdet_d5: 33_653_315,
  tf_efficientdet_d6: 51_871_782,
  tf_efficientdet_d7: 51_871_782,
  tf_efficientdet_d7x: 77_147_166,
  tf_efficientdet_lite0: 3_243_470,
  tf_efficientdet_lite1: 4_248_318,
  tf_efficientdet_lite2: 5_252_334,
  tf_efficientdet_lite3: 8_350_862,
  tf_efficientdet_lite3x: 9_280_862,
  tf_efficientdet_lite4: 15_130_894,
  efficientdet_d0: 3_877_763,
  efficientdet_d1: 6_622_026,
  efficientdet_d2: 8_091_215,
  efficientdet_d3: 12_022_376,
};

const d0 = buildEfficientDet(detectorConfig('tf_efficientdet_d0'));

describe('EfficientDet architecture', () => {
  it('has effdet\'s exact parameter count for every named model', () => {
    expect(DETECTORS.map((d) => d.name).sort()).toEqual(Object.keys(EFFDET_PARAMS).sort());
    for (const d of DETECTORS) expect([d.name, countParameters(buildEfficientDet(d))]).toEqual([d.name, EFFDET_PARAMS[d.name]]);
  });

  it('outputs class and box maps per level in effdet\'s layout, at any input size', () => {
    const a = analyzeGraph(d0);
    expect(d0.outputs).toEqual([3, 4, 5, 6, 7].map(classOutputName).concat([3, 4, 5, 6, 7].map(boxOutputName)));
    expect(a.outputs.class_P3).toEqual([1, 9 * 90, 64, 64]);
    expect(a.outputs.box_P7).toEqual([1, 36, 4, 4]);
    // Odd and non-square sizes: every level is ceil(previous / 2), as effdet's get_feat_sizes.
    const odd = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'), { inputResolution: [300, 333] });
    const sizes = [3, 4, 5, 6, 7].map((l) => analyzeGraph(odd).outputs[classOutputName(l)]!.slice(2));
    expect(sizes).toEqual([[38, 42], [19, 21], [10, 11], [5, 6], [3, 3]]);
    const dyn = buildEfficientDet(detectorConfig('efficientdet_d0'), { inputResolution: null });
    expect(analyzeGraph(dyn, { height: 256, width: 320 }).outputs.box_P5).toEqual([1, 36, 8, 10]);
  });

  it('exposes the backbone endpoints and the BiFPN outputs as endpoints', () => {
    const a = analyzeGraph(d0);
    expect(a.endpoints.map((e) => [e.name, e.stride, e.channels])).toEqual([
      ['stride2', 2, 16], ['stride4', 4, 24], ['stride8', 8, 40], ['stride16', 16, 112], ['stride32', 32, 320],
      ['P3', 8, 64], ['P4', 16, 64], ['P5', 32, 64], ['P6', 64, 64], ['P7', 128, 64],
    ]);
    expect(a.endpoints[0]!.node).toBe('backbone.blocks.0.0');
  });

  it('shares head convs across levels (counted once) with a BatchNorm per level, under effdet\'s names', () => {
    const readers = new Map<string, number>();
    for (const n of d0.nodes) if ('params' in n) for (const p of Object.values(n.params as Record<string, string>)) readers.set(p, (readers.get(p) ?? 0) + 1);
    for (const net of ['class_net', 'box_net'])
      for (const p of ['conv_rep.0.conv_dw.weight', 'conv_rep.2.conv_pw.bias', 'predict.conv_dw.weight', 'predict.conv_pw.weight', 'predict.conv_pw.bias']) {
        expect(readers.get(`${net}.${p}`), `${net}.${p}`).toBe(5);
        expect(d0.parameters.find((q) => q.name === `${net}.${p}`)!.shared).toBe(true);
      }
    expect(readers.get('class_net.bn_rep.2.4.bn.running_var')).toBe(1);
    expect(d0.parameters.filter((p) => p.shared).length).toBe(2 * (3 * 3 + 3));
    const unique = d0.parameters.filter((p) => p.trainable).reduce((s, p) => s + numel(p.shape), 0);
    expect(countParameters(d0)).toBe(unique);
    const names = new Set(d0.parameters.map((p) => p.name));
    for (const n of [
      'backbone.conv_stem.weight', 'backbone.blocks.6.0.bn3.running_mean', 'fpn.resample.3.conv.conv.weight', 'fpn.resample.3.conv.bn.weight',
      'fpn.cell.0.fnode.1.combine.resample.2.conv.conv.bias', 'fpn.cell.0.fnode.0.combine.edge_weights', 'fpn.cell.2.fnode.7.after_combine.conv.conv_pw.bias',
      'fpn.cell.2.fnode.7.after_combine.conv.bn.running_var', 'class_net.bn_rep.0.0.bn.weight', 'box_net.predict.conv_pw.bias',
    ])
      expect(names, n).toContain(n);
    // No classifier head on the backbone (effdet's features_only trunk).
    expect([...names].some((n) => n.startsWith('backbone.conv_head') || n.startsWith('backbone.bn2.'))).toBe(false);
  });

  it('initialises as effdet: class prior bias, unit fusion weights', () => {
    const p = (name: string) => d0.parameters.find((q) => q.name === name)!;
    expect(p('class_net.predict.conv_pw.bias').init).toEqual({ kind: 'constant', value: CLASS_PRIOR_BIAS });
    expect(CLASS_PRIOR_BIAS).toBeCloseTo(-4.59512, 5);
    expect(p('box_net.predict.conv_pw.bias').init).toEqual({ kind: 'constant', value: 0 });
    expect(p('fpn.cell.0.fnode.4.combine.edge_weights')).toMatchObject({ shape: [3], init: { kind: 'constant', value: 1 } });
  });

  it('fuses by the config\'s method: fast and softmax weighted sums, or a plain sum without weights', () => {
    const kinds = (g: Graph) => new Set(g.nodes.filter((n) => n.name.endsWith('.combine')).map((n) => (n.kind === 'weightedSum' ? n.normalization : n.kind)));
    expect(kinds(d0)).toEqual(new Set(['fast']));
    expect(kinds(buildEfficientDet({ ...detectorConfig('tf_efficientdet_d0'), fusion: 'softmax' }))).toEqual(new Set(['softmax']));
    const lite = buildEfficientDet(detectorConfig('tf_efficientdet_lite0'));
    expect(kinds(lite)).toEqual(new Set(['add']));
    expect(lite.parameters.some((p) => p.name.endsWith('edge_weights'))).toBe(false);
    expect(lite.nodes.some((n) => n.kind === 'activation' && n.fn === 'relu6' && n.name.startsWith('fpn.'))).toBe(true);
  });

  it('--num-classes changes only the class net\'s prediction conv', () => {
    const c = detectorConfig('tf_efficientdet_d0');
    const g = buildEfficientDet(c, { numClasses: 3 });
    expect(countParameters(d0) - countParameters(g)).toBe((90 - 3) * 9 * (64 + 1));
    expect(analyzeGraph(g).outputs.class_P4).toEqual([1, 27, 32, 32]);
    expect(readDetectionMetadata(g).numClasses).toBe(3);
    expect(() => buildEfficientDet(c, { numClasses: 0 })).toThrow(/numClasses/);
  });

  it('records what post-processing needs in the graph, and survives JSON', () => {
    const back = JSON.parse(JSON.stringify(d0)) as Graph;
    expect(() => validateGraph(back)).not.toThrow();
    expect(readDetectionMetadata(back)).toEqual({
      detector: 'tf_efficientdet_d0', numClasses: 90, minLevel: 3, maxLevel: 7, numScales: 3,
      aspectRatios: [[1, 1], [1.4, 0.7], [0.7, 1.4]], anchorScale: 4, imageSize: [512, 512],
    });
    expect(readDetectionMetadata(buildEfficientDet(detectorConfig('tf_efficientdet_d7x')))).toMatchObject({ maxLevel: 8, imageSize: [1536, 1536] });
    expect(readDetectionMetadata(buildEfficientDet(detectorConfig('tf_efficientdet_lite0'))).anchorScale).toBe(3);
  });

  it('uses effdet\'s conventions per family', () => {
    const conv = (g: Graph, name: string) => g.nodes.find((n) => n.name === name)!;
    const effdet = buildEfficientDet(detectorConfig('efficientdet_d0'));
    expect(conv(effdet, 'fpn.resample.3.downsample')).toMatchObject({ kind: 'maxPool', kernel: [3, 3], stride: [2, 2], padding: { mode: 'symmetric' } });
    expect(conv(d0, 'fpn.resample.3.downsample')).toMatchObject({ padding: { mode: 'same' } });
    // effdet's own trainings have no redundant biases; BN eps 1e-3 in the BiFPN and heads, the timm backbone's 1e-5.
    expect(effdet.parameters.some((p) => p.name === 'fpn.cell.0.fnode.0.after_combine.conv.conv_pw.bias')).toBe(false);
    expect(conv(effdet, 'fpn.cell.0.fnode.0.after_combine.conv.bn')).toMatchObject({ eps: 1e-3, momentum: 0.01 });
    expect(conv(effdet, 'backbone.bn1')).toMatchObject({ eps: 1e-5 });
    expect(conv(d0, 'backbone.bn1')).toMatchObject({ eps: 1e-3 });
    const levelFirst = buildEfficientDet({ ...detectorConfig('efficientdet_d0'), headBnLevelFirst: true });
    expect(levelFirst.parameters.some((p) => p.name === 'class_net.bn_rep.4.2.weight')).toBe(true);
  });
});

describe('BiFPN topology', () => {
  it('is the paper\'s node list for levels 3-7', () => {
    expect(bifpnNodes(3, 7, 'fast').map((n) => [n.level, n.inputOffsets])).toEqual([
      [6, [3, 4]], [5, [2, 5]], [4, [1, 6]], [3, [0, 7]], [4, [1, 7, 8]], [5, [2, 6, 9]], [6, [3, 5, 10]], [7, [4, 11]],
    ]);
  });

  fcTest.prop([fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom('fast', 'softmax', 'sum' as const)])(
    'any levels: inputs come earlier, from the same or an adjacent level, and the last nodes are one per level in order',
    (min, span, fusion) => {
      const max = min + span;
      const n = max - min + 1;
      const nodes = bifpnNodes(min, max, fusion);
      expect(nodes.length).toBe(2 * (n - 1));
      const levelOf = [...Array.from({ length: n }, (_, i) => min + i), ...nodes.map((x) => x.level)];
      nodes.forEach((node, i) => {
        expect(node.fusion).toBe(fusion);
        for (const off of node.inputOffsets) {
          expect(off).toBeLessThan(n + i);
          expect(Math.abs(levelOf[off]! - node.level)).toBeLessThanOrEqual(1);
        }
        expect(node.inputOffsets.filter((off) => levelOf[off] !== node.level).length).toBe(1);
      });
      // The cell's outputs (its last n maps) are levels min..max in order.
      expect(levelOf.slice(-n)).toEqual(Array.from({ length: n }, (_, i) => min + i));
    },
  );

  it('rejects impossible levels by name', () => {
    expect(() => bifpnNodes(5, 5, 'fast')).toThrow(/levels/);
  });
});

describe('detector names and compound scaling', () => {
  it('resolves names, aliases and compound names, and lists the known ones otherwise', () => {
    expect(isDetectorName('tf_efficientdet_d0')).toBe(true);
    expect(isDetectorName('tf-efficientdet-d0')).toBe(true);
    expect(isDetectorName('efficientdet_phi-1')).toBe(true);
    expect(isDetectorName('efficientnet_b0')).toBe(false);
    expect(() => detectorConfig('efficientdet_d9')).toThrow(UnknownVariantError);
    expect(() => detectorConfig('efficientdet_d9')).toThrow(/known: tf_efficientdet_d0/);
  });

  it('phi 0 is D0; widths, depths and sizes follow the scaling rule', () => {
    expect(countParameters(buildEfficientDet(detectorConfig('efficientdet_phi0')))).toBe(EFFDET_PARAMS.efficientdet_d0);
    expect(countParameters(buildEfficientDet(detectorConfig('tf_efficientdet_phi0')))).toBe(EFFDET_PARAMS.tf_efficientdet_d0);
    const rows = [0, 1, 3, 5, 6].map((phi) => detectorConfig(`efficientdet_phi${phi}`));
    expect(rows.map((r) => [r.fpnChannels, r.fpnCellRepeats, r.boxClassRepeats, r.imageSize[0]])).toEqual([
      [64, 3, 3, 512], [88, 4, 3, 640], [160, 6, 4, 896], [288, 8, 4, 1152], [384, 9, 5, 1280],
    ]);
    const small = detectorConfig('tf_efficientdet_phi-1');
    expect(small).toMatchObject({ backbone: 'tf_efficientnet_phi-1', fpnChannels: 48, fpnCellRepeats: 2, boxClassRepeats: 2, imageSize: [384, 384], padding: 'same' });
    expect(() => buildEfficientDet(small)).not.toThrow();
  });

  fcTest.prop([fc.integer({ min: -200, max: 300 }).map((x) => x / 100), fc.integer({ min: 5, max: 100 }).map((x) => x / 100)], { numRuns: 15 })(
    'a larger phi never gives a smaller detector',
    (phi, step) => {
      const p = (x: number) => countParameters(buildEfficientDet(detectorConfig(`efficientdet_phi${x < 0 ? `-${-x}` : x}`), { numClasses: 2 }));
      expect(p(Math.round((phi + step) * 100) / 100)).toBeGreaterThanOrEqual(p(phi));
    },
  );
});

describe('detectorsFitting', () => {
  it('names the detectors a state_dict fits, whatever its class count', () => {
    const g = buildEfficientDet(detectorConfig('efficientdet_d0'), { numClasses: 7 });
    const fit = detectorsFitting(randomWeights(g));
    expect(fit).toEqual(['efficientdet_d0']);
    const d6 = buildEfficientDet(detectorConfig('tf_efficientdet_d6'), { inputResolution: null });
    expect(detectorsFitting(new Map(d6.parameters.map((p) => [p.name, { dtype: 'float32', shape: p.shape, data: new Float32Array(0) }])))).toEqual(['tf_efficientdet_d6', 'tf_efficientdet_d7']);
    expect(detectorsFitting(new Map())).toEqual([]);
  });
});
