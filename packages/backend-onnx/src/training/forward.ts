import { assertNever, type Graph, type GraphNode } from '@effnet/core';
import type { TrainingEmitter } from './emitter.js';
import type { NchwcPlan } from './nchwc.js';

/** A dropout or drop-path mask the trainer draws for each step: 0 or 1 / (1 - rate), per element or per sample. */
export interface MaskInput {
  name: string;
  node: string;
  rate: number;
  dims: number[];
}

/** What the forward pass leaves for the backward rules and the trainer. */
export interface ForwardResult {
  /** Per node: tensors its backward rule reads (batch statistics, pooling indices, masks, normalised weights). */
  saved: Map<string, Record<string, string>>;
  masks: MaskInput[];
  /**
   * Batch statistics of each BatchNorm on batch statistics, for the trainer's running averages: the mean and the
   * unbiased variance, [C] each, under the running statistic they update.
   */
  bnStats: { param: string; tensor: string; momentum: number }[];
}

export interface ForwardOptions {
  /** BatchNorm on batch statistics with running-average updates (PyTorch's train()); false: running statistics. */
  trainBatchNorm: boolean;
  /** Tensors whose gradient the backward pass needs (decides e.g. whether MaxPool returns its indices). */
  needsGrad: Set<string>;
  nchwc: NchwcPlan | null;
  /** Inference: dropout and drop-path are identities (no mask inputs). */
  inference?: boolean;
}

/** Emits the graph in training mode: batch statistics, masks from graph inputs, everything the backward reads. */
export function emitTrainingForward(e: TrainingEmitter, graph: Graph, o: ForwardOptions): ForwardResult {
  const saved = new Map<string, Record<string, string>>();
  const masks: MaskInput[] = [];
  const bnStats: ForwardResult['bnStats'] = [];
  for (const node of graph.nodes) {
    const s = emitNode(e, node, node.inputs, node.name, o, masks, bnStats);
    if (s) saved.set(node.name, s);
  }
  return { saved, masks, bnStats };
}

function emitNode(
  e: TrainingEmitter,
  node: GraphNode,
  x: string[],
  out: string,
  o: ForwardOptions,
  masks: MaskInput[],
  bnStats: ForwardResult['bnStats'],
): Record<string, string> | undefined {
  const dims = e.shape(out);
  switch (node.kind) {
    case 'conv2d':
      if (o.nchwc?.convs.has(node.name)) o.nchwc.emitConv(e, node, x[0]!, out);
      else e.emit(node, x, out);
      return undefined;
    case 'activation':
      // SiLU as one fused kernel (ORT's QuickGelu with alpha 1 is x * sigmoid(x)); written out because ORT's
      // common-subexpression pass would merge the forward Sigmoid with the backward's and block its own fusion.
      if (node.fn === 'silu') e.nodes.push({ opType: 'QuickGelu', name: out, inputs: [x[0]!], outputs: [out], attributes: { alpha: { float: 1 } }, domain: 'com.microsoft' });
      else e.emit(node, x, out);
      return undefined;
    case 'convTranspose':
    case 'softmax':
    case 'add':
    case 'mul':
    case 'globalAvgPool':
    case 'flatten':
    case 'dense':
    case 'resize':
    case 'concat':
      e.emit(node, x, out);
      return undefined;
    case 'batchNorm': {
      if (!o.trainBatchNorm) {
        e.emit(node, x, out);
        return undefined;
      }
      const p = node.params;
      const c = node.channels;
      const axes = dims.length === 4 ? [0, 2, 3] : [0];
      const count = dims.reduce((a, d, i) => (axes.includes(i) ? a * d : a), 1);
      // Two passes (mean, then mean of squared deviations): E[x^2] - E[x]^2 loses digits when |mean| >> std.
      const mean = e.reduceMean(x[0]!, axes, true, `${out}/mean`);
      const centred = e.sub(x[0]!, mean, `${out}/centred`, dims);
      const sumSq = e.t('ReduceSumSquare', [centred], { axes, keepdims: 1 }, `${out}/sumsq`, e.dims.get(mean));
      const biasedVar = e.mul(sumSq, e.floatConst([1 / count]), `${out}/var`, e.dims.get(mean));
      const invStd = e.t('Reciprocal', [e.t('Sqrt', [e.add(biasedVar, e.floatConst([node.eps]), `${out}/var_eps`)], undefined, `${out}/std`)], undefined, `${out}/inv_std`, e.dims.get(mean));
      // y = (x - mean) * (gamma / std) + beta in one affine pass over the centred input, which the backward keeps.
      const scale = e.mul(p.weight, e.reshape(invStd, [c]), `${out}/scale`, [c]);
      e.affine(centred, scale, p.bias, c, out, out);
      const flat = (t: string) => e.reshape(t, [c]);
      const unbiased = e.mul(flat(sumSq), e.floatConst([1 / Math.max(1, count - 1)]), `${out}/unbiased_var`, [c]);
      bnStats.push({ param: p.runningMean, tensor: flat(mean), momentum: node.momentum }, { param: p.runningVar, tensor: unbiased, momentum: node.momentum });
      return { centred, invStd, scale };
    }
    case 'groupNorm': {
      // Written out (not InstanceNormalization) so that the backward reads the normalised input and 1 / std.
      const [N, C, H, W] = dims as [number, number, number, number];
      const G = node.groups;
      const gd = [N, G, (C / G) * H * W];
      const xg = e.reshape(x[0]!, gd, `${out}/grouped`);
      const mean = e.reduceMean(xg, [2], true, `${out}/mean`);
      const centred = e.sub(xg, mean, `${out}/centred`, gd);
      const sumSq = e.t('ReduceSumSquare', [centred], { axes: [2], keepdims: 1 }, `${out}/sumsq`, [N, G, 1]);
      const variance = e.mul(sumSq, e.floatConst([1 / gd[2]!]), `${out}/var`, [N, G, 1]);
      const invStd = e.t('Reciprocal', [e.t('Sqrt', [e.add(variance, e.floatConst([node.eps]), `${out}/var_eps`, [N, G, 1])], undefined, `${out}/std`, [N, G, 1])], undefined, `${out}/inv_std`, [N, G, 1]);
      const xhat = e.mul(centred, invStd, `${out}/xhat`, gd);
      const xhat4 = e.reshape(xhat, dims, `${out}/xhat4`);
      e.affine(xhat4, node.params.weight, node.params.bias, C, out, out);
      return { xhat, xhat4, invStd };
    }
    case 'dropout':
    case 'dropPath': {
      if (node.rate === 0 || o.inference) {
        e.op('Identity', out, [x[0]!], [out]);
        return undefined;
      }
      const name = `mask:${node.name}`;
      const maskDims = node.kind === 'dropout' ? dims : [dims[0]!, ...dims.slice(1).map(() => 1)];
      masks.push({ name, node: node.name, rate: node.rate, dims: maskDims });
      e.dims.set(name, maskDims);
      e.op('Mul', out, [x[0]!, name], [out], undefined, `effnet ${node.kind} (mask input)`);
      return { mask: name };
    }
    case 'maxPool': {
      if (!o.needsGrad.has(x[0]!)) {
        e.emit(node, x, out);
        return undefined;
      }
      const pads = e.staticPads(node, x[0]!)!;
      const indices = `${out}/indices`;
      e.op('MaxPool', out, [x[0]!], [out, indices], { kernel_shape: node.kernel, strides: node.stride, pads }, 'effnet maxPool (with argmax indices)');
      e.dims.set(indices, dims);
      return { indices };
    }
    case 'weightedSum': {
      // The fusion weights are trainable: normalise them in the graph.
      const k = x.length;
      const raw = node.params.weight;
      let w: string;
      if (node.normalization === 'fast') {
        const r = e.t('Relu', [raw], undefined, `${out}/relu_w`, [k]);
        const denom = e.add(e.reduceSum(r, [0], true, `${out}/sum_w`), e.floatConst([node.epsilon]), `${out}/denom`, [1]);
        w = e.t('Div', [r, denom], undefined, `${out}/w`, [k]);
      } else w = e.t('Softmax', [raw], { axis: 0 }, `${out}/w`, [k]);
      const parts = k === 1 ? [w] : e.tn('Split', [w, e.int64Const(new Array(k).fill(1))], k, { axis: 0 }, `${out}/w_i`);
      const terms = x.map((xi, i) => e.mul(xi, parts[i]!, `${out}/term${i}`, dims));
      e.op(k === 1 ? 'Identity' : 'Sum', out, terms, [out], undefined, 'effnet weightedSum');
      return { w, ...Object.fromEntries(parts.map((p, i) => [`w${i}`, p])) };
    }
    default:
      return assertNever(node, 'node kind');
  }
}
