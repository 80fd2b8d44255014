import { appendEfficientNetTrunk } from '../efficientnet.js';
import { InvalidSpecError, WeightMismatchError } from '../errors.js';
import type { Endpoint, Graph, Padding, ParamInit } from '../graph.js';
import { GraphBuilder } from '../graph-builder.js';
import type { TensorMap } from '../tensor.js';
import { specFor } from '../variants.js';
import { bindWeights } from '../weights/check.js';
import { bifpnNodes, type FusionMethod } from './bifpn.js';
import { DETECTORS, type EfficientDetConfig, validateDetectorConfig } from './efficientdet-configs.js';

export interface DetectorBuildOptions {
  /** Classes of the class net, default the config's (90, COCO's ids). */
  numClasses?: number;
  /** Static input size (number or [h, w]), or null for any size. Default: the config's image size. */
  inputResolution?: number | [number, number] | null;
  /** Input channels, default 3. */
  inChannels?: number;
}

/** A pyramid feature map: its tensor, channels and level (stride 2^level). */
export interface PyramidFeature {
  node: string;
  channels: number;
  level: number;
}
type Feature = PyramidFeature;

/** Raw head outputs of a level, in effdet's layout: class [N, anchors * classes, H, W], box [N, anchors * 4, H, W]. */
export const classOutputName = (level: number) => `class_P${level}`;
export const boxOutputName = (level: number) => `box_P${level}`;

/** The class-net prediction bias: sigmoid(b) = 0.01 at start (focal loss prior, as effdet and automl). */
export const CLASS_PRIOR_BIAS = -Math.log((1 - 0.01) / 0.01);

/** effdet's init of BiFPN convs: glorot uniform over (fan_in + fan_out) / 2. */
function glorotUniform(shape: number[], groups = 1): ParamInit {
  const [o, i, kh, kw] = shape as [number, number, number, number];
  const fanIn = i * kh * kw;
  const fanOut = Math.floor((o * kh * kw) / groups);
  return { kind: 'uniform', limit: Math.sqrt(3 / Math.max(1, (fanIn + fanOut) / 2)) };
}

/** effdet's init of head convs: normal with variance 1 / fan_in. */
function varianceScaling(shape: number[]): ParamInit {
  const [, i, kh, kw] = shape as [number, number, number, number];
  return { kind: 'normal', std: Math.sqrt(1 / Math.max(1, i * kh * kw)) };
}

/**
 * Builds an EfficientDet as one graph: the EfficientNet backbone (`backbone.*`), extra levels by 1x1 conv + BN and
 * max pooling (`fpn.resample.*`), BiFPN cells generated from `bifpnNodes` (`fpn.cell.*`), and class and box nets
 * whose convs are shared across levels with a BatchNorm per level (`class_net.*`, `box_net.*`). Every parameter
 * has effdet's state_dict name. Outputs `class_P3..` then `box_P3..`; endpoints: the backbone's `stride*` and the
 * BiFPN's `P3..`; metadata: what post-processing needs (levels, anchors, image size, classes).
 */
export function buildEfficientDet(config: EfficientDetConfig, options: DetectorBuildOptions = {}): Graph {
  validateDetectorConfig(config);
  const { inChannels = 3 } = options;
  const numClasses = options.numClasses ?? config.numClasses;
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new InvalidSpecError('numClasses', numClasses, 'a positive integer');
  const res = options.inputResolution === undefined ? config.imageSize : options.inputResolution;
  const [h, w] = res === null ? [null, null] : typeof res === 'number' ? [res, res] : res;
  for (const v of [h, w]) if (v !== null && (!Number.isInteger(v) || v < 1)) throw new InvalidSpecError('inputResolution', res, 'a positive integer, [h, w], or null');

  const g = new GraphBuilder(config.name, [{ name: 'input', channels: inChannels, height: h, width: w }]);
  const { trunk, pyramid, separable, backbone } = appendEfficientDetFeatures(g, config, 'input', inChannels);
  const C = config.fpnChannels;
  const padding: Padding = { mode: config.padding };

  const numAnchors = config.numScales * config.aspectRatios.length;
  const outputs: string[] = [];
  for (const [net, perAnchor, outName] of [['class_net', numClasses, classOutputName], ['box_net', 4, boxOutputName]] as const) {
    pyramid.forEach((f, li) => {
      let x = f.node;
      for (let k = 0; k < config.boxClassRepeats; k++) {
        const node = `${net}.level${f.level}.conv_rep.${k}`;
        x = separable(node, `${net}.conv_rep.${k}`, x, { bias: config.redundantBias, head: true });
        x = g.batchNorm(config.headBnLevelFirst ? `${net}.bn_rep.${li}.${k}` : `${net}.bn_rep.${k}.${li}.bn`, x, C, config.bnEps, config.bnMomentum);
        x = g.activation(`${node}.act`, x, config.act);
      }
      const predict = `${net}.level${f.level}.predict`;
      const dw = g.conv(`${predict}.conv_dw`, x, { inChannels: C, outChannels: C, kernel: 3, groups: C, padding, params: `${net}.predict.conv_dw`, shared: true, init: varianceScaling([C, 1, 3, 3]) });
      outputs.push(
        g.conv(outName(f.level), dw, {
          inChannels: C,
          outChannels: perAnchor * numAnchors,
          kernel: 1,
          padding,
          bias: true,
          params: `${net}.predict.conv_pw`,
          shared: true,
          init: varianceScaling([perAnchor * numAnchors, C, 1, 1]),
          biasInit: { kind: 'constant', value: net === 'class_net' ? CLASS_PRIOR_BIAS : 0 },
        }),
      );
    });
  }

  const endpoints: Endpoint[] = [...trunk.endpoints, ...pyramid.map((f) => ({ name: `P${f.level}`, node: f.node, stride: 2 ** f.level, channels: C }))];
  return g.build(outputs, endpoints, detectionMetadata(config, numClasses, backbone));
}

/** What an EfficientDet's feature network gives its heads. */
export interface EfficientDetFeatures {
  /** The backbone (its `stride*` endpoints). */
  trunk: ReturnType<typeof appendEfficientNetTrunk>;
  /** The BiFPN's outputs, P{minLevel} .. P{maxLevel}, fpnChannels each. */
  pyramid: Feature[];
  /** effdet's SeparableConv2d (C to C) without norm and act; `head` convs are shared across levels. */
  separable: (node: string, params: string, x: string, o: { bias: boolean; head: boolean }) => string;
  /** The backbone's variant name. */
  backbone: string;
}

/**
 * Appends an EfficientDet's feature network to `g` at `input`: the EfficientNet backbone (`backbone.*`), extra levels
 * by 1x1 conv + BN and max pooling (`fpn.resample.*`) and the BiFPN cells generated from `bifpnNodes` (`fpn.cell.*`),
 * under effdet's names. The detector's heads and automl's segmentation head (bifpnseg) both read its pyramid.
 */
export function appendEfficientDetFeatures(g: GraphBuilder, config: EfficientDetConfig, input: string, inChannels: number): EfficientDetFeatures {
  const spec = specFor(config.backbone, { dropPathRate: config.backboneDropPath });
  const trunk = appendEfficientNetTrunk(g, spec, input, inChannels, 'backbone.');
  const padding: Padding = { mode: config.padding };
  const C = config.fpnChannels;
  const bn = (name: string, x: string) => g.batchNorm(name, x, C, config.bnEps, config.bnMomentum);

  const feats: Feature[] = [];
  for (let level = config.minLevel; level <= Math.min(5, config.maxLevel); level++) {
    const e = trunk.endpoints.find((p) => p.stride === 2 ** level);
    if (!e) throw new InvalidSpecError(`backbone ${spec.name}`, trunk.endpoints.map((p) => p.stride), `an endpoint at stride ${2 ** level} for level ${level}`);
    feats.push({ node: e.node, channels: e.channels, level });
  }
  // Any tensor of a level gives the size that upsampling to that level must reach.
  const sizeOf = new Map<number, string>(feats.map((f) => [f.level, f.node]));

  /** effdet's ResampleFeatureMap: 1x1 conv + BN where channels differ, then max-pool down or nearest up one level. */
  const resample = (src: Feature, level: number, name: string): string => {
    let x = src.node;
    if (src.channels !== C) {
      const shape = [C, src.channels, 1, 1];
      x = g.conv(`${name}.conv.conv`, x, { inChannels: src.channels, outChannels: C, kernel: 1, padding, bias: config.redundantBias, init: glorotUniform(shape) });
      x = bn(`${name}.conv.bn`, x);
    }
    if (src.level === level - 1) return g.maxPool(`${name}.downsample`, x, 3, 2, padding);
    if (src.level === level + 1) return g.resize(`${name}.upsample`, x, 'nearest', { like: sizeOf.get(level)! });
    if (src.level !== level) throw new InvalidSpecError(`${name} levels`, [src.level, level], 'the same or adjacent pyramid levels');
    return x;
  };

  for (let level = feats.length + config.minLevel; level <= config.maxLevel; level++) {
    const node = resample(feats.at(-1)!, level, `fpn.resample.${level - config.minLevel}`);
    feats.push({ node, channels: C, level });
    sizeOf.set(level, node);
  }

  /** effdet's SeparableConv2d (3x3 depthwise, then 1x1 pointwise, C to C) without its norm and act. */
  const separable = (node: string, params: string, x: string, o: { bias: boolean; head: boolean }): string => {
    // Head convs are shared by every level; BiFPN convs belong to one node.
    const shared = o.head;
    const dwShape = [C, 1, 3, 3];
    const pwShape = [C, C, 1, 1];
    const dw = g.conv(`${node}.conv_dw`, x, { inChannels: C, outChannels: C, kernel: 3, groups: C, padding, params: `${params}.conv_dw`, shared, init: o.head ? varianceScaling(dwShape) : glorotUniform(dwShape, C) });
    return g.conv(`${node}.conv_pw`, dw, { inChannels: C, outChannels: C, kernel: 1, padding, bias: o.bias, params: `${params}.conv_pw`, shared, init: o.head ? varianceScaling(pwShape) : glorotUniform(pwShape) });
  };

  const topology = bifpnNodes(config.minLevel, config.maxLevel, config.fusion);
  let cellInputs = feats;
  for (let r = 0; r < config.fpnCellRepeats; r++) {
    const all = [...cellInputs];
    topology.forEach((fnode, i) => {
      const fn = `fpn.cell.${r}.fnode.${i}`;
      const inputs = fnode.inputOffsets.map((off) => resample(all[off]!, fnode.level, `${fn}.combine.resample.${off}`));
      let x = fuse(g, `${fn}.combine`, inputs, fnode.fusion);
      x = g.activation(`${fn}.after_combine.act`, x, config.act);
      x = separable(`${fn}.after_combine.conv`, `${fn}.after_combine.conv`, x, { bias: config.redundantBias, head: false });
      all.push({ node: bn(`${fn}.after_combine.conv.bn`, x), channels: C, level: fnode.level });
    });
    cellInputs = all.slice(-feats.length);
  }
  return { trunk, pyramid: cellInputs, separable, backbone: spec.name };

}

/** A BiFPN node's fusion: a learnt weighted sum (effdet's `edge_weights`), or a plain sum. */
function fuse(g: GraphBuilder, name: string, inputs: string[], fusion: FusionMethod): string {
  if (fusion === 'sum') return g.add(name, inputs);
  return g.weightedSum(name, inputs, fusion, 1e-4, `${name}.edge_weights`);
}

/** What post-processing reads from a detection graph (see readDetectionMetadata): the detector's anchor facts. */
export type DetectionMetadata = Pick<EfficientDetConfig, 'numClasses' | 'minLevel' | 'maxLevel' | 'numScales' | 'aspectRatios' | 'anchorScale' | 'imageSize'> & {
  detector: string;
};

function detectionMetadata(c: EfficientDetConfig, numClasses: number, backbone: string): Graph['metadata'] {
  return {
    task: 'detection',
    architecture: 'efficientdet',
    variant: c.name,
    detector: c.name,
    backbone,
    numClasses,
    minLevel: c.minLevel,
    maxLevel: c.maxLevel,
    numScales: c.numScales,
    aspectRatios: JSON.stringify(c.aspectRatios),
    anchorScale: c.anchorScale,
    imageHeight: c.imageSize[0],
    imageWidth: c.imageSize[1],
    resolution: c.imageSize[0],
    padding: c.padding,
    fusion: c.fusion,
  };
}

/** The detection facts of a graph built by buildEfficientDet; InvalidSpecError when the graph is not a detector. */
export function readDetectionMetadata(graph: Graph): DetectionMetadata {
  const m = graph.metadata;
  if (m.task !== 'detection') throw new InvalidSpecError(`graph "${graph.name}" metadata.task`, m.task, "'detection' (a graph built by buildEfficientDet)");
  const num = (k: string) => {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidSpecError(`graph "${graph.name}" metadata.${k}`, v, 'a number');
    return v;
  };
  let aspectRatios: [number, number][];
  try {
    aspectRatios = JSON.parse(String(m.aspectRatios));
  } catch {
    throw new InvalidSpecError(`graph "${graph.name}" metadata.aspectRatios`, m.aspectRatios, 'a JSON list of (w, h) pairs');
  }
  return {
    detector: String(m.detector),
    numClasses: num('numClasses'),
    minLevel: num('minLevel'),
    maxLevel: num('maxLevel'),
    numScales: num('numScales'),
    aspectRatios,
    anchorScale: num('anchorScale'),
    imageSize: [num('imageHeight'), num('imageWidth')],
  };
}

/**
 * The named detectors whose graph a state_dict (canonical/effdet names) fits exactly, whatever its class count: what
 * to suggest when weights are loaded into the wrong detector.
 */
export function detectorsFitting(tensors: TensorMap): string[] {
  const predict = tensors.get('class_net.predict.conv_pw.weight');
  const out: string[] = [];
  for (const d of DETECTORS) {
    const anchors = d.numScales * d.aspectRatios.length;
    if (!predict || predict.shape[0]! % anchors !== 0) continue;
    try {
      bindWeights(buildEfficientDet(d, { numClasses: predict.shape[0]! / anchors, inputResolution: null }), tensors);
      out.push(d.name);
    } catch (e) {
      if (!(e instanceof WeightMismatchError)) throw e;
    }
  }
  return out;
}

/** effdet's name of the class net's prediction conv: its outputs are anchors * classes. */
const CLASS_PREDICT_WEIGHT = 'class_net.predict.conv_pw.weight';

/** true when a state_dict (canonical/effdet names) holds an EfficientDet's class net. */
export function isDetectorStateDict(tensors: TensorMap): boolean {
  return tensors.has(CLASS_PREDICT_WEIGHT);
}

/**
 * The class count an EfficientDet state_dict was trained for (its class prediction conv has anchors * classes
 * outputs); undefined without a class net. `source` names the file in errors.
 */
export function detectorClassCount(tensors: TensorMap, config: EfficientDetConfig, source: string): number | undefined {
  const t = tensors.get(CLASS_PREDICT_WEIGHT);
  if (!t) return undefined;
  const anchors = config.numScales * config.aspectRatios.length;
  if (t.shape[0]! % anchors !== 0)
    throw new InvalidSpecError(`${source}: ${CLASS_PREDICT_WEIGHT}`, t.shape, `[anchors * classes, ...] with ${anchors} anchors per location; these weights are not ${config.name}'s`);
  return t.shape[0]! / anchors;
}

/**
 * bindWeights for a detector graph; a WeightMismatchError says which named detectors the weights fit instead (or that
 * they fit none), naming `source`.
 */
export function bindDetectorWeights(graph: Graph, tensors: TensorMap, config: EfficientDetConfig, source: string): TensorMap {
  try {
    return bindWeights(graph, tensors);
  } catch (e) {
    if (!(e instanceof WeightMismatchError)) throw e;
    const fits = detectorsFitting(tensors);
    const hint = fits.length ? `hint: ${source} holds the weights of ${fits.join(' or ')}, not ${config.name}` : `hint: ${source} fits no named EfficientDet`;
    throw new WeightMismatchError(e.missing, e.unexpected, e.misshaped, hint);
  }
}
