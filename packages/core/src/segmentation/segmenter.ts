import { appendEfficientNetTrunk } from '../efficientnet.js';
import { InvalidSpecError } from '../errors.js';
import { assertNever, type Endpoint, type Graph, type Padding, type ParamInit } from '../graph.js';
import { GraphBuilder } from '../graph-builder.js';
import { specFor } from '../variants.js';
import { appendEfficientDetFeatures } from '../detection/efficientdet.js';
import { detectorConfig } from '../detection/efficientdet-configs.js';
import { type DeepLabV3PlusConfig, type FpnConfig, type SegmenterConfig, segmenterInputMultiple, type UnetConfig } from './decoder-configs.js';

export interface SegmenterBuildOptions {
  /** Output channels of the segmentation head, default 1 (smp's default: one binary mask). */
  numClasses?: number;
  /** Static input size (number or [h, w]), or null for any size (a multiple of 32; of 2^maxLevel for bifpnseg). Default null. */
  inputResolution?: number | [number, number] | null;
  /** Input channels, default 3. */
  inChannels?: number;
}

/** The name of a segmenter's output: per-class logits [N, classes, H, W] at the input's size. */
export const SEGMENTATION_OUTPUT = 'logits';

/** An encoder feature map the decoders read. */
interface Feature {
  node: string;
  channels: number;
}

const SYMMETRIC: Padding = { mode: 'symmetric' };

/** smp's decoder init: kaiming_uniform_(fan_in, relu) for convs. */
const kaimingUniform = (fanIn: number): ParamInit => ({ kind: 'uniform', limit: Math.sqrt(6 / fanIn) });
/** smp's head init: xavier_uniform_. */
const xavierUniform = (fanIn: number, fanOut: number): ParamInit => ({ kind: 'uniform', limit: Math.sqrt(6 / (fanIn + fanOut)) });

/**
 * Builds a segmenter as one graph: the EfficientNet encoder (`encoder.*`, timm's names; dilated to the decoder's
 * output stride), then the decoder generated from its config row (`decoder.*`) and `segmentation_head.0`, every
 * parameter under smp's state_dict name. The encoder keeps timm's `conv_head`/`bn2` (smp's encoder does: they count
 * in its parameters and sit in its state_dict) on a branch no output reads; inference drops it. Output `logits`
 * [N, classes, H, W] at the input size; endpoints: the encoder's features at strides 2 (the stem, as smp) to 32;
 * metadata: task `segmentation`, the decoder, the encoder, the classes.
 */
export function buildSegmenter(config: SegmenterConfig, options: SegmenterBuildOptions = {}): Graph {
  const { inChannels = 3, numClasses = 1 } = options;
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new InvalidSpecError('numClasses', numClasses, 'a positive integer');
  const res = options.inputResolution ?? null;
  const [h, w] = res === null ? [null, null] : typeof res === 'number' ? [res, res] : res;
  const multiple = segmenterInputMultiple(config);
  for (const v of [h, w]) if (v !== null && (!Number.isInteger(v) || v < 1 || v % multiple !== 0)) throw new InvalidSpecError('inputResolution', res, `a positive multiple of ${multiple}, [h, w] of them, or null`);

  const d = config.decoder;
  const g = new GraphBuilder(config.name, [{ name: 'input', channels: inChannels, height: h, width: w }]);
  if (d.kind === 'bifpnseg') return buildBifpnSeg(g, config, numClasses, inChannels, h);
  const spec = specFor(config.encoder);
  const trunk = appendEfficientNetTrunk(g, spec, 'input', inChannels, 'encoder.', { outputStride: d.outputStride });
  // smp's encoder keeps timm's head conv and BN: same parameters and state_dict, read by no output.
  const head = g.conv('encoder.conv_head', trunk.output, { inChannels: trunk.channels, outChannels: spec.headChannels, kernel: 1, padding: { mode: spec.padding } });
  g.batchNorm('encoder.bn2', head, spec.headChannels, spec.bnEps, spec.bnMomentum);

  const stem: Feature = { node: 'encoder.bn1.act', channels: spec.stemChannels };
  const at = (stride: number): Feature => {
    const e = [...trunk.endpoints].reverse().find((p) => p.stride === stride);
    if (!e) throw new InvalidSpecError(`encoder ${spec.name}`, trunk.endpoints.map((p) => p.stride), `a feature map at stride ${stride}`);
    return { node: e.node, channels: e.channels };
  };
  const features = [stem, at(4), at(8), at(16), at(d.outputStride)];
  const ctx: DecoderContext = { g, features, input: 'input', bn: (name, x, c) => g.batchNorm(name, x, c, d.bnEps, d.bnMomentum) };

  let x: Feature;
  switch (d.kind) {
    case 'unet':
      x = unetDecoder(ctx, d);
      break;
    case 'fpn':
      x = fpnDecoder(ctx, d);
      break;
    case 'deeplabv3plus':
      x = deepLabV3PlusDecoder(ctx, d);
      break;
    default:
      return assertNever(d, 'decoder');
  }
  const k = d.headKernel;
  const upsample = d.headUpsampling > 1;
  let logits = g.conv(upsample ? 'segmentation_head.0' : SEGMENTATION_OUTPUT, x.node, {
    inChannels: x.channels,
    outChannels: numClasses,
    kernel: k,
    padding: SYMMETRIC,
    bias: true,
    params: 'segmentation_head.0',
    init: xavierUniform(x.channels * k * k, numClasses * k * k),
  });
  if (upsample) logits = g.resize(SEGMENTATION_OUTPUT, logits, 'bilinear', { scale: d.headUpsampling }, true);

  const endpoints: Endpoint[] = features.map((f, i) => ({ name: `stride${2 ** (i + 1)}`, node: f.node, stride: 2 ** (i + 1), channels: f.channels }));
  return g.build([logits], endpoints, {
    task: 'segmentation',
    architecture: d.kind,
    variant: config.name,
    segmenter: config.name,
    decoder: d.kind,
    encoder: spec.name,
    numClasses,
    outputStride: d.outputStride,
    padding: spec.padding,
    ...(h !== null ? { resolution: h } : {}),
  });
}

interface DecoderContext {
  g: GraphBuilder;
  /** Encoder features at strides 2, 4, 8, 16 and the deepest (32, or 16 when dilated). */
  features: Feature[];
  input: string;
  bn: (name: string, x: string, channels: number) => string;
}

/** smp's Conv2dReLU / a conv-BN-ReLU Sequential: `<p>.0` conv (no bias), `<p>.1` BN, `<p>.2` ReLU. */
function convBnRelu(ctx: DecoderContext, p: string, x: string, cin: number, cout: number, kernel: number): string {
  const y = ctx.g.conv(`${p}.0`, x, { inChannels: cin, outChannels: cout, kernel, padding: SYMMETRIC, init: kaimingUniform(cin * kernel * kernel) });
  return ctx.g.activation(`${p}.2`, ctx.bn(`${p}.1`, y, cout), 'relu');
}

/** smp's SeparableConv2d (depthwise k x k, dilated, then 1x1; no biases): `<p>.0`, `<p>.1`. */
function separable(ctx: DecoderContext, p: string, x: string, cin: number, cout: number, dilation: number): string {
  const dw = ctx.g.conv(`${p}.0`, x, { inChannels: cin, outChannels: cin, kernel: 3, dilation, groups: cin, padding: SYMMETRIC, init: kaimingUniform(9) });
  return ctx.g.conv(`${p}.1`, dw, { inChannels: cin, outChannels: cout, kernel: 1, padding: SYMMETRIC, init: kaimingUniform(cin) });
}

function unetDecoder(ctx: DecoderContext, d: UnetConfig): Feature {
  const { g, features } = ctx;
  const [head, ...rest] = [...features].reverse();
  // Each block resizes to the next shallower feature's size (the last to the input's), concatenates it, two convs.
  const skips: (Feature | null)[] = [...rest, null];
  let x = head!;
  d.decoderChannels.forEach((out, i) => {
    const p = `decoder.blocks.${i}`;
    const skip = skips[i] ?? null;
    let y = g.resize(`${p}.up`, x.node, d.interpolation, { like: skip?.node ?? ctx.input });
    let cin = x.channels;
    if (skip) {
      y = g.concat(`${p}.cat`, [y, skip.node]);
      cin += skip.channels;
    }
    y = convBnRelu(ctx, `${p}.conv1`, y, cin, out, 3);
    y = convBnRelu(ctx, `${p}.conv2`, y, out, out, 3);
    x = { node: y, channels: out };
  });
  return x;
}

function fpnDecoder(ctx: DecoderContext, d: FpnConfig): Feature {
  const { g, features } = ctx;
  const [, c2, c3, c4, c5] = features as [Feature, Feature, Feature, Feature, Feature];
  const P = d.pyramidChannels;
  const S = d.segmentationChannels;
  const lateral = (name: string, f: Feature) =>
    g.conv(name, f.node, { inChannels: f.channels, outChannels: P, kernel: 1, padding: SYMMETRIC, bias: true, init: kaimingUniform(f.channels), biasInit: { kind: 'uniform', limit: 1 / Math.sqrt(f.channels) } });
  const p5 = lateral('decoder.p5', c5);
  const topDown = (name: string, above: string, skip: Feature) => g.add(name, [g.resize(`${name}.up`, above, 'nearest', { scale: 2 }), lateral(`${name}.skip_conv`, skip)]);
  const p4 = topDown('decoder.p4', p5, c4);
  const p3 = topDown('decoder.p3', p4, c3);
  const p2 = topDown('decoder.p2', p3, c2);
  // One segmentation block per level, upsampled (bilinear, align_corners) back to stride 4.
  const levels: [string, number][] = [
    [p5, 3],
    [p4, 2],
    [p3, 1],
    [p2, 0],
  ];
  const maps = levels.map(([p, ups], i) => {
    let x = p;
    for (let j = 0; j < Math.max(1, ups); j++) {
      const q = `decoder.seg_blocks.${i}.block.${j}.block`;
      const cin = j === 0 ? P : S;
      x = g.conv(`${q}.0`, x, { inChannels: cin, outChannels: S, kernel: 3, padding: SYMMETRIC, init: kaimingUniform(cin * 9) });
      x = g.activation(`${q}.2`, g.groupNorm(`${q}.1`, x, d.groupNormGroups, S, 1e-5), 'relu');
      if (ups > 0) x = g.resize(`${q}.up`, x, 'bilinear', { scale: 2 }, true);
    }
    return x;
  });
  const merged = g.add('decoder.merge', maps);
  // smp drops whole channels (Dropout2d); effnet's dropout drops elements (identity at inference either way).
  return { node: g.dropout('decoder.dropout', merged, d.dropout), channels: S };
}

function deepLabV3PlusDecoder(ctx: DecoderContext, d: DeepLabV3PlusConfig): Feature {
  const { g, features } = ctx;
  const [, s4, , , deep] = features as [Feature, Feature, Feature, Feature, Feature];
  const C = d.channels;
  const a = 'decoder.aspp.0';
  const branches = [convBnRelu(ctx, `${a}.convs.0`, deep.node, deep.channels, C, 1)];
  d.atrousRates.forEach((rate, i) => {
    const p = `${a}.convs.${i + 1}`;
    const y = separable(ctx, `${p}.0`, deep.node, deep.channels, C, rate);
    branches.push(g.activation(`${p}.2`, ctx.bn(`${p}.1`, y, C), 'relu'));
  });
  // Image pooling: global average, 1x1 conv-BN-ReLU, back to the map's size (bilinear from 1x1 = broadcast).
  const pp = `${a}.convs.4`;
  let pooled = g.globalAvgPool(`${pp}.0`, deep.node, true);
  pooled = g.conv(`${pp}.1`, pooled, { inChannels: deep.channels, outChannels: C, kernel: 1, padding: SYMMETRIC, init: kaimingUniform(deep.channels) });
  pooled = g.activation(`${pp}.3`, ctx.bn(`${pp}.2`, pooled, C), 'relu');
  branches.push(g.resize(`${pp}.up`, pooled, 'bilinear', { like: deep.node }, false));
  let x = g.concat(`${a}.cat`, branches);
  x = convBnRelu(ctx, `${a}.project`, x, C * branches.length, C, 1);
  x = g.dropout(`${a}.project.3`, x, d.dropout);
  x = g.activation('decoder.aspp.3', ctx.bn('decoder.aspp.2', separable(ctx, 'decoder.aspp.1', x, C, C, 1), C), 'relu');
  const up = g.resize('decoder.up', x, 'bilinear', { scale: d.outputStride / 4 }, true);
  const high = convBnRelu(ctx, 'decoder.block1', s4.node, s4.channels, d.highResChannels, 1);
  const cat = g.concat('decoder.cat', [up, high]);
  const y = separable(ctx, 'decoder.block2.0', cat, C + d.highResChannels, C, 1);
  return { node: g.activation('decoder.block2.2', ctx.bn('decoder.block2.1', y, C), 'relu'), channels: C };
}

/**
 * automl's EfficientDet segmentation head on a detector's backbone and BiFPN (effdet's names `backbone.*`, `fpn.*`, so
 * a detector checkpoint starts it), the head under `seg_head.*`: from the deepest level, per level
 * `seg_head.con2d_ts.<i>` (3x3 stride-2 transposed conv, TF 'same': the full output cropped by one row and column at
 * the end), `seg_head.con2d_t_bns.<i>`, the detector's activation, concat with the next level; then
 * `seg_head.head_transpose` to the classes at stride 2^(minLevel-1), resized (bilinear, half-pixel) to the input.
 */
function buildBifpnSeg(g: GraphBuilder, config: SegmenterConfig, numClasses: number, inChannels: number, h: number | null): Graph {
  const det = detectorConfig(config.detector!);
  const { trunk, pyramid, backbone } = appendEfficientDetFeatures(g, det, 'input', inChannels);
  const C = det.fpnChannels;
  // TF's Conv2DTranspose(3, strides=2, padding='same') yields exactly twice the input: crop the (2n+1)-long full output at the end.
  const same: [number, number, number, number] = [0, 0, 1, 1];
  const glorot = (cin: number, cout: number): ParamInit => ({ kind: 'uniform', limit: Math.sqrt(6 / (9 * (cin + cout))) });
  let x = pyramid.at(-1)!.node;
  let cin = C;
  const skips = pyramid.slice(0, -1).reverse();
  skips.forEach((skip, i) => {
    let y = g.convTranspose(`seg_head.con2d_ts.${i}`, x, { inChannels: cin, outChannels: C, kernel: 3, stride: 2, pads: same, init: glorot(cin, C) });
    y = g.batchNorm(`seg_head.con2d_t_bns.${i}`, y, C, det.bnEps, det.bnMomentum);
    y = g.activation(`seg_head.con2d_t_bns.${i}.act`, y, det.act);
    x = g.concat(`seg_head.cat.${i}`, [y, skip.node]);
    cin = C + skip.channels;
  });
  const head = g.convTranspose('seg_head.head_transpose', x, { inChannels: cin, outChannels: numClasses, kernel: 3, stride: 2, pads: same, bias: true, init: glorot(cin, numClasses) });
  const logits = g.resize(SEGMENTATION_OUTPUT, head, 'bilinear', { like: 'input' }, false);
  const endpoints: Endpoint[] = [...trunk.endpoints, ...pyramid.map((f) => ({ name: `P${f.level}`, node: f.node, stride: 2 ** f.level, channels: C }))];
  return g.build([logits], endpoints, {
    task: 'segmentation',
    architecture: 'bifpnseg',
    variant: config.name,
    segmenter: config.name,
    decoder: 'bifpnseg',
    encoder: backbone,
    detector: det.name,
    numClasses,
    outputStride: 2 ** (det.minLevel - 1),
    padding: det.padding,
    ...(h !== null ? { resolution: h } : {}),
  });
}

/** The segmentation facts of a graph built by buildSegmenter; InvalidSpecError when it is not a segmenter. */
export function readSegmentationMetadata(graph: Graph): { segmenter: string; decoder: string; encoder: string; numClasses: number } {
  const m = graph.metadata;
  if (m.task !== 'segmentation') throw new InvalidSpecError(`graph "${graph.name}" metadata.task`, m.task, "'segmentation' (a graph built by buildSegmenter)");
  const numClasses = m.numClasses;
  if (typeof numClasses !== 'number' || !Number.isInteger(numClasses) || numClasses < 1) throw new InvalidSpecError(`graph "${graph.name}" metadata.numClasses`, numClasses, 'a positive integer');
  return { segmenter: String(m.segmenter), decoder: String(m.decoder), encoder: String(m.encoder), numClasses };
}
