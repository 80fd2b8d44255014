import { type Graph, type GraphNode, numel } from '@effnet/core';
import { DataType, encodeModel } from '../onnx-proto.js';
import { ort } from '../ort.js';
import { TrainingEmitter } from './emitter.js';

/**
 * ONNX Runtime's CPU kernels for blocked layouts (domain com.microsoft.nchwc: ReorderInput, Conv, ReorderOutput).
 * ORT rewrites convs into them only when weights are constant initializers; in a training graph weights are inputs,
 * so depthwise convs fall to a slow per-group im2col path unless the graph uses these kernels itself, with the
 * weight reordered in the graph. The kernels are internal and their block size depends on the CPU (16 with
 * AVX-512, 8 with AVX2), so a trainer probes them once and falls back to standard operators.
 */
export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

/** Which convs run as NCHWc kernels, and how to emit one. */
export interface NchwcPlan {
  blockSize: number;
  convs: Set<string>;
  emitConv(e: TrainingEmitter, node: Extract<GraphNode, { kind: 'conv2d' }>, x: string, out: string): void;
}

const isDepthwiseNode = (n: GraphNode): n is Extract<GraphNode, { kind: 'conv2d' }> =>
  n.kind === 'conv2d' && n.groups > 1 && n.groups === n.inChannels && n.groups === n.outChannels;

/**
 * `t` viewed as the NCHW tensor `dims`, in NCHWc layout: reordered once per tensor and shared by every NCHWc conv
 * that reads it (a depthwise conv's input serves its forward pass and its weight gradient; dy serves the input and
 * the weight gradient).
 */
export function blocked(e: TrainingEmitter, t: string, dims: number[], hint: string): string {
  const key = `nchwc:${t}:${dims.join('x')}`;
  let b = e.memo.get(key);
  if (!b) {
    b = e.t('ReorderInput', [e.reshape(t, dims, `${hint}/image`)], undefined, `${hint}/blocked`, dims, NCHWC_DOMAIN);
    e.memo.set(key, b);
  }
  return b;
}

/**
 * Depthwise weight [C, 1, kh, kw] -> MLAS's OIHWBo order (channel blocks, block innermost), same dims. That order is
 * the NCHWc layout of the weight viewed as a [1, C, kh, kw] image, so ReorderInput does it; a Reshape/Transpose/
 * Reshape measured 20x slower when the "weight" is a whole gradient (the weight-gradient conv).
 */
export function reorderDepthwiseWeight(e: TrainingEmitter, w: string, c: number, kh: number, kw: number, hint: string): string {
  return e.reshape(blocked(e, w, [1, c, kh, kw], `${hint}/w`), [c, 1, kh, kw], `${hint}/w_nchwc`);
}

export interface DepthwiseConv {
  channels: number;
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  pads: number[];
  bias?: string;
  outDims: number[];
}

/** An NCHWc depthwise conv of already reordered input and weight, back to NCHW as `out`. */
export function nchwcConv(e: TrainingEmitter, xBlocked: string, wBlocked: string, o: DepthwiseConv, out: string, hint: string): string {
  const y = e.t('Conv', [xBlocked, wBlocked, ...(o.bias ? [o.bias] : [])], { kernel_shape: o.kernel, strides: o.stride, dilations: o.dilation, pads: o.pads, group: o.channels }, `${hint}/y_nchwc`, undefined, NCHWC_DOMAIN);
  e.nodes.push({ opType: 'ReorderOutput', name: out, inputs: [y], outputs: [out], attributes: { channels: o.channels }, domain: NCHWC_DOMAIN });
  e.dims.set(out, o.outDims);
  return out;
}

/** A depthwise conv through NCHWc kernels: ReorderInput (shared), Conv (reordered weight), ReorderOutput. */
export function emitNchwcDepthwise(e: TrainingEmitter, x: string, w: string, o: DepthwiseConv, out: string, hint: string): string {
  const [kh, kw] = o.kernel;
  return nchwcConv(e, blocked(e, x, e.shape(x), `${hint}/x`), reorderDepthwiseWeight(e, w, o.channels, kh, kw, hint), o, out, hint);
}

/** Every depthwise conv whose channels are a multiple of the block size. */
export function planNchwc(graph: Graph, blockSize: number): NchwcPlan {
  const convs = new Set(graph.nodes.filter((n) => isDepthwiseNode(n) && n.inChannels % blockSize === 0).map((n) => n.name));
  return {
    blockSize,
    convs,
    emitConv(e, node, x, out) {
      const pads = e.staticPads(node, x)!;
      emitNchwcDepthwise(e, x, node.params.weight, { channels: node.inChannels, kernel: node.kernel, stride: node.stride, dilation: node.dilation, pads, ...(node.params.bias ? { bias: node.params.bias } : {}), outDims: e.shape(out) }, out, node.name);
    },
  };
}

const probes = new Map<string, Promise<number | null>>();

/**
 * The NCHWc block size this machine's ORT uses (16 with AVX-512, 8 with AVX2), read from where ReorderInput puts one
 * element, then confirmed by running a small depthwise conv both ways; null when the kernels are missing or disagree
 * with the standard Conv.
 */
export function probeNchwc(threads?: number): Promise<number | null> {
  const key = String(threads ?? 0);
  let p = probes.get(key);
  if (!p) probes.set(key, (p = runProbe(threads).catch(() => null)));
  return p;
}

async function runProbe(threads?: number): Promise<number | null> {
  const { InferenceSession, Tensor } = await ort();
  const c = 16;
  const dims = [2, c, 7, 6];
  const outDims = [2, c, 4, 4];
  const conv = { channels: c, kernel: [3, 3] as [number, number], stride: [2, 1] as [number, number], dilation: [1, 2] as [number, number], pads: [1, 0, 1, 2] };
  const e = new TrainingEmitter(new Map([['x', dims], ['w', [c, 1, 3, 3]], ['iota', [1, c, 1, 2]]]));
  e.nodes.push({ opType: 'ReorderInput', name: 'blocked', inputs: ['iota'], outputs: ['blocked'], domain: NCHWC_DOMAIN });
  emitNchwcDepthwise(e, 'x', 'w', { ...conv, outDims }, 'fast', 'probe');
  e.op('Conv', 'plain', ['x', 'w'], ['plain'], { kernel_shape: conv.kernel, strides: conv.stride, pads: conv.pads, dilations: conv.dilation, group: c });
  const model = encodeModel({
    irVersion: 8,
    opset: 17,
    producerName: 'effnet',
    producerVersion: '0.1.0',
    docString: 'NCHWc probe',
    graphName: 'nchwc_probe',
    nodes: e.nodes,
    initializers: e.initializers,
    inputs: [...e.dims].filter(([n]) => ['x', 'w', 'iota'].includes(n)).map(([name, shape]) => ({ name, elemType: DataType.FLOAT, shape })),
    outputs: [{ name: 'blocked', elemType: DataType.FLOAT, shape: [1, c, 1, 2] }, { name: 'fast', elemType: DataType.FLOAT, shape: outDims }, { name: 'plain', elemType: DataType.FLOAT, shape: outDims }],
    metadata: {},
    extraOpsets: [{ domain: NCHWC_DOMAIN, version: 1 }],
  });
  const s = await InferenceSession.create(model, { logSeverityLevel: 4, ...(threads ? { intraOpNumThreads: threads } : {}) });
  try {
    const feed = (d: number[], f: (i: number) => number) => new Tensor('float32', Float32Array.from({ length: numel(d) }, (_, i) => f(i)), d);
    const r = await s.run({ x: feed(dims, (i) => Math.sin(i * 0.37)), w: feed([c, 1, 3, 3], (i) => Math.cos(i * 0.91)), iota: feed([1, c, 1, 2], (i) => i) });
    // Element (channel 8, column 0) sits at 8 when blocks hold 16 channels; with blocks of 8, (channel 0, column 1) does.
    const at8 = (r.blocked!.data as Float32Array)[8];
    const block = at8 === 16 ? 16 : at8 === 1 ? 8 : null;
    const a = r.fast!.data as Float32Array;
    const b = r.plain!.data as Float32Array;
    const agree = a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= 1e-4 * (1 + Math.abs(b[i]!)));
    return agree ? block : null;
  } finally {
    await s.release();
  }
}
