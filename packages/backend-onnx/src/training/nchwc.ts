import { type Graph, type GraphNode, numel } from '@effnet/core';
import { encodeModel } from '../onnx-proto.js';
import { ort } from '../ort.js';
import type { TrainingEmitter } from './emitter.js';

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

/** Depthwise weight [C, 1, kh, kw] -> MLAS's OIHWBo order (channel blocks of `block`, block innermost), same dims. */
export function reorderDepthwiseWeight(e: TrainingEmitter, w: string, c: number, kh: number, kw: number, block: number, hint: string): string {
  const blocked = e.reshape(w, [c / block, block, kh * kw], `${hint}/w_blocks`);
  return e.reshape(e.transpose(blocked, [0, 2, 1], `${hint}/w_bo`), [c, 1, kh, kw], `${hint}/w_nchwc`);
}

/** A depthwise conv through NCHWc kernels: ReorderInput, Conv (reordered weight), ReorderOutput. */
export function emitNchwcDepthwise(
  e: TrainingEmitter,
  x: string,
  w: string,
  o: { channels: number; kernel: [number, number]; stride: [number, number]; dilation: [number, number]; pads: number[]; bias?: string; outDims: number[] },
  block: number,
  out: string,
  hint: string,
): string {
  const [kh, kw] = o.kernel;
  const wr = reorderDepthwiseWeight(e, w, o.channels, kh, kw, block, hint);
  const xr = e.t('ReorderInput', [x], undefined, `${hint}/x_nchwc`, undefined, NCHWC_DOMAIN);
  const y = e.t('Conv', [xr, wr, ...(o.bias ? [o.bias] : [])], { kernel_shape: o.kernel, strides: o.stride, dilations: o.dilation, pads: o.pads, group: o.channels }, `${hint}/y_nchwc`, undefined, NCHWC_DOMAIN);
  e.nodes.push({ opType: 'ReorderOutput', name: out, inputs: [y], outputs: [out], attributes: { channels: o.channels }, domain: NCHWC_DOMAIN });
  e.dims.set(out, o.outDims);
  return out;
}

/** Every depthwise conv whose channels are a multiple of the block size. */
export function planNchwc(graph: Graph, blockSize: number): NchwcPlan {
  const convs = new Set(graph.nodes.filter((n) => isDepthwiseNode(n) && n.inChannels % blockSize === 0).map((n) => n.name));
  return {
    blockSize,
    convs,
    emitConv(e, node, x, out) {
      const pads = e.staticPads(node, x)!;
      emitNchwcDepthwise(e, x, node.params.weight, { channels: node.inChannels, kernel: node.kernel, stride: node.stride, dilation: node.dilation, pads, ...(node.params.bias ? { bias: node.params.bias } : {}), outDims: e.shape(out) }, blockSize, out, node.name);
    },
  };
}

const probes = new Map<string, Promise<number | null>>();

/**
 * The NCHWc block size this machine's ORT uses (16 or 8), found by running a small depthwise conv both ways and
 * comparing; null when the kernels are missing or disagree with the standard Conv.
 */
export function probeNchwc(threads?: number): Promise<number | null> {
  const key = String(threads ?? 0);
  let p = probes.get(key);
  if (!p) probes.set(key, (p = runProbe(threads)));
  return p;
}

async function runProbe(threads?: number): Promise<number | null> {
  const { InferenceSession, Tensor } = await ort();
  const c = 16;
  const dims = [2, c, 7, 6];
  const x = Float32Array.from({ length: numel(dims) }, (_, i) => Math.sin(i * 0.37));
  const w = Float32Array.from({ length: c * 9 }, (_, i) => Math.cos(i * 0.91));
  const { TrainingEmitter } = await import('./emitter.js');
  for (const block of [16, 8]) {
    try {
      const shapes = new Map([['x', dims], ['w', [c, 1, 3, 3]]]);
      const e = new TrainingEmitter(shapes);
      const attrs = { kernel_shape: [3, 3], strides: [2, 1], pads: [1, 0, 1, 2], dilations: [1, 2], group: c };
      const outDims = [2, c, 4, 4];
      emitNchwcDepthwise(e, 'x', 'w', { channels: c, kernel: [3, 3], stride: [2, 1], dilation: [1, 2], pads: attrs.pads, outDims }, block, 'fast', 'probe');
      e.op('Conv', 'plain', ['x', 'w'], ['plain'], attrs);
      const model = encodeModel({
        irVersion: 8,
        opset: 17,
        producerName: 'effnet',
        producerVersion: '0.1.0',
        docString: 'NCHWc probe',
        graphName: 'nchwc_probe',
        nodes: e.nodes,
        initializers: e.initializers,
        inputs: [{ name: 'x', elemType: 1, shape: dims }, { name: 'w', elemType: 1, shape: [c, 1, 3, 3] }],
        outputs: [{ name: 'fast', elemType: 1, shape: outDims }, { name: 'plain', elemType: 1, shape: outDims }],
        metadata: {},
        extraOpsets: [{ domain: NCHWC_DOMAIN, version: 1 }],
      });
      const s = await InferenceSession.create(model, { logSeverityLevel: 4, ...(threads ? { intraOpNumThreads: threads } : {}) });
      try {
        const r = await s.run({ x: new Tensor('float32', x, dims), w: new Tensor('float32', w, [c, 1, 3, 3]) });
        const a = r.fast!.data as Float32Array;
        const b = r.plain!.data as Float32Array;
        if (a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= 1e-4 * (1 + Math.abs(b[i]!)))) return block;
      } finally {
        await s.release();
      }
    } catch {
      // No NCHWc kernels in this build (or not this block size): try the next, then fall back.
    }
  }
  return null;
}
