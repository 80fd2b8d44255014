import {
  analyzeGraph,
  buildEfficientDet,
  buildEfficientNet,
  buildSegmenter,
  checkNumber,
  compound,
  detectorConfig,
  encodeBlock,
  type EfficientNetSpec,
  InvalidSpecError,
  isDetectorName,
  isSegmenterName,
  resolveVariant,
  segmenterConfig,
  segmenterInputMultiple,
  specFor,
} from '@effnet/core';
import { defineCommand } from '../args.js';
import { formatTable, groupThousands, humanCount } from '../table.js';

export interface InfoOptions {
  variant?: string;
  resolution?: number;
  phi?: number;
  /** Detectors: classes of the class net (default the config's, 90). */
  numClasses?: number;
  json: boolean;
}

/** An EfficientDet: its config, exact parameter count, MACs, raw outputs and endpoints at its image size (or --resolution). */
export function detectorInfo(o: InfoOptions & { variant: string }) {
  if (o.phi !== undefined) throw new InvalidSpecError('--phi', o.phi, `nothing with a detector; name a compound-scaled detector instead (efficientdet_phi${o.phi})`);
  const c = detectorConfig(o.variant);
  const graph = buildEfficientDet(c, { numClasses: o.numClasses, ...(o.resolution ? { inputResolution: o.resolution } : {}) });
  const a = analyzeGraph(graph);
  return {
    variant: c.name,
    task: 'detection' as const,
    resolution: a.height,
    imageSize: [a.height, a.width],
    params: a.params,
    macs: a.macs,
    backbone: c.backbone,
    padding: c.padding,
    bnEps: c.bnEps,
    numClasses: o.numClasses ?? c.numClasses,
    levels: [c.minLevel, c.maxLevel],
    anchors: { scales: c.numScales, aspectRatios: c.aspectRatios, anchorScale: c.anchorScale },
    fpn: { channels: c.fpnChannels, cells: c.fpnCellRepeats, fusion: c.fusion, act: c.act },
    head: { repeats: c.boxClassRepeats },
    outputs: a.outputs,
    endpoints: a.endpoints.map((e) => ({ name: e.name, node: e.node, stride: e.stride, channels: e.channels, shape: e.shape })),
  };
}

/** A segmenter: decoder, encoder, exact parameter count (smp's), MACs, logits and encoder features at --resolution (512). */
export function segmenterInfo(o: InfoOptions & { variant: string }) {
  if (o.phi !== undefined) throw new InvalidSpecError('--phi', o.phi, `nothing with a segmenter; name its ${o.variant.toLowerCase().startsWith('bifpnseg_') ? `detector instead (bifpnseg_efficientdet_phi${o.phi})` : `encoder instead (${o.variant.split('_')[0]}_efficientnet_phi${o.phi})`}`);
  const c = segmenterConfig(o.variant);
  const resolution = o.resolution ?? 512;
  const multiple = segmenterInputMultiple(c);
  if (resolution % multiple) throw new InvalidSpecError('--resolution', resolution, `a multiple of ${multiple} for ${c.name}`);
  const graph = buildSegmenter(c, { numClasses: o.numClasses, inputResolution: resolution });
  const a = analyzeGraph(graph);
  return {
    variant: c.name,
    task: 'segmentation' as const,
    resolution,
    params: a.params,
    macs: a.macs,
    decoder: c.decoder,
    encoder: c.encoder,
    ...(c.detector ? { detector: c.detector } : {}),
    numClasses: o.numClasses ?? 1,
    outputs: a.outputs,
    endpoints: a.endpoints.map((e) => ({ name: e.name, node: e.node, stride: e.stride, channels: e.channels, shape: e.shape })),
  };
}

export function modelInfo(o: InfoOptions) {
  if (o.resolution !== undefined) checkNumber('resolution', o.resolution, { integer: true, min: 1 });
  if (o.phi !== undefined) checkNumber('phi', o.phi);
  let spec: EfficientNetSpec;
  let scaling: { phi: number; depth: number; width: number } | undefined;
  if (o.phi !== undefined) {
    const base = o.variant ? resolveVariant(o.variant).arch : 'efficientnet';
    const c = compound({ phi: o.phi, base });
    spec = o.resolution !== undefined ? { ...c.spec, resolution: o.resolution } : c.spec;
    scaling = { phi: c.phi, depth: c.depth, width: c.width };
  } else {
    if (!o.variant) throw new InvalidSpecError('variant', o.variant, 'a variant name, or --phi X for a compound-scaled size');
    spec = specFor(o.variant, o.resolution !== undefined ? { resolution: o.resolution } : {});
  }
  const graph = buildEfficientNet(spec);
  const a = analyzeGraph(graph);
  let channels = spec.stemChannels;
  const stages = spec.stages.map((st, i) => {
    const s = { stage: i, block: encodeBlock(st.block, st.repeats), repeats: st.repeats, inChannels: channels, outChannels: st.block.out, stride: st.block.stride };
    channels = st.block.out;
    return s;
  });
  return {
    variant: spec.name,
    ...(scaling ? { scaling } : {}),
    resolution: spec.resolution,
    params: a.params,
    macs: a.macs,
    padding: spec.padding,
    bnEps: spec.bnEps,
    stem: spec.stemChannels,
    head: spec.headChannels,
    stages,
    endpoints: a.endpoints.map((e) => ({ name: e.name, node: e.node, stride: e.stride, channels: e.channels, shape: e.shape })),
  };
}

export function infoText(o: InfoOptions): string {
  if (o.variant && isDetectorName(o.variant)) {
    const d = detectorInfo({ ...o, variant: o.variant });
    if (o.json) return JSON.stringify(d, null, 2);
    return [
      `${d.variant} at ${d.imageSize.join('x')}: ${groupThousands(d.params)} params (${humanCount(d.params)}), ${groupThousands(d.macs)} MACs (${humanCount(d.macs)})`,
      `backbone ${d.backbone}, padding ${d.padding}, BiFPN ${d.fpn.channels} channels x ${d.fpn.cells} cells (${d.fpn.fusion} fusion, ${d.fpn.act}), heads ${d.head.repeats} repeats, ${d.numClasses} classes, levels P${d.levels[0]}-P${d.levels[1]}, anchor scale ${d.anchors.anchorScale}`,
      '',
      formatTable(['output', 'shape'], Object.entries(d.outputs).map(([k, v]) => [k, `[${v.join(', ')}]`])),
      '',
      formatTable(['endpoint', 'node', 'stride', 'channels', 'shape'], d.endpoints.map((e) => [e.name, e.node, e.stride, e.channels, `[${e.shape.join(', ')}]`])),
    ].join('\n');
  }
  if (o.variant && isSegmenterName(o.variant)) {
    const d = segmenterInfo({ ...o, variant: o.variant });
    if (o.json) return JSON.stringify(d, null, 2);
    return [
      `${d.variant} at ${d.resolution}x${d.resolution}: ${groupThousands(d.params)} params (${humanCount(d.params)}), ${groupThousands(d.macs)} MACs (${humanCount(d.macs)})`,
      d.detector
        ? `automl's segmentation head on ${d.detector}'s backbone (${d.encoder}) and BiFPN, ${d.numClasses} classes`
        : `decoder ${d.decoder.kind} (as smp's), encoder ${d.encoder} at output stride ${d.decoder.outputStride}, ${d.numClasses} classes`,
      '',
      formatTable(['output', 'shape'], Object.entries(d.outputs).map(([k, v]) => [k, `[${v.join(', ')}]`])),
      '',
      formatTable(['endpoint', 'node', 'stride', 'channels', 'shape'], d.endpoints.map((e) => [e.name, e.node, e.stride, e.channels, `[${e.shape.join(', ')}]`])),
    ].join('\n');
  }
  if (o.numClasses !== undefined) throw new InvalidSpecError('--num-classes', o.numClasses, 'a detector or segmenter name (classifiers report their 1000-class ImageNet head)');
  const info = modelInfo(o);
  if (o.json) return JSON.stringify(info, null, 2);
  const lines = [
    `${info.variant} at ${info.resolution}x${info.resolution}: ${groupThousands(info.params)} params (${humanCount(info.params)}), ${groupThousands(info.macs)} MACs (${humanCount(info.macs)})`,
    `padding ${info.padding}, BN eps ${info.bnEps}, stem ${info.stem}, head ${info.head}`,
    '',
    formatTable(['stage', 'block', 'in', 'out', 'stride'], info.stages.map((s) => [s.stage, s.block, s.inChannels, s.outChannels, s.stride])),
    '',
    formatTable(['endpoint', 'node', 'stride', 'channels', 'shape'], info.endpoints.map((e) => [e.name, e.node, e.stride, e.channels, `[${e.shape.join(', ')}]`])),
  ];
  return lines.join('\n');
}

export const infoCommand = defineCommand({
  name: 'info',
  summary: 'stages, endpoints, parameters and MACs of a variant, detector or segmenter',
  usage: 'effnet info <variant|detector|segmenter> [--resolution N] [--phi X] [--num-classes N] [--json]',
  positionals: { name: '<variant|detector|segmenter>', description: 'a variant (effnet variants), a detector (tf_efficientdet_d0..d7x, tf_efficientdet_lite0..4, efficientdet_d0..d3, efficientdet_phi<X>) or a segmenter (unet_, fpn_ or deeplabv3plus_<variant>, bifpnseg_<detector>); optional with --phi', max: 1 },
  options: {
    resolution: { type: 'number', integer: true, min: 1, max: 8192, valueName: 'N', description: 'analyse at N x N pixels instead of the variant\'s resolution' },
    phi: { type: 'number', min: -20, max: 20, valueName: 'X', description: "compound-scale the variant's base (B0 by default) by phi; negative: --phi=-1" },
    'num-classes': { type: 'number', integer: true, min: 1, max: 100000, valueName: 'N', description: "detectors: the class net's classes (default 90, COCO's ids); segmenters: the head's (default 1)" },
    json: { type: 'boolean', description: 'print JSON instead of tables' },
  },
  examples: ['effnet info efficientnet_b3 --json', 'effnet info --phi=-2 --resolution 128', 'effnet info tf_efficientdet_d0 --num-classes 3 --json', 'effnet info unet_efficientnet_b0 --num-classes 3 --json'],
  async run({ values, positionals }, io) {
    io.out(infoText({ variant: positionals[0], resolution: values.resolution, phi: values.phi, numClasses: values['num-classes'], json: values.json }));
    return 0;
  },
});
