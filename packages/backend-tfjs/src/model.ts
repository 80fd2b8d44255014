import {
  assertNever,
  float32Tensor,
  type Graph,
  type GraphNode,
  InvalidSpecError,
  type Padding,
  fixedPads,
  type Tensor,
  type TensorMap,
  weightData,
} from '@effnet/core';
import { tf } from './tf.js';

type T = ReturnType<typeof tf.tensor>;
type T4 = ReturnType<typeof tf.tensor4d>;

/** How a canonical (PyTorch-layout) parameter is stored for tfjs, and back. */
interface Layout {
  toTf: number[] | null;
  fromTf: number[] | null;
}
const IDENTITY: Layout = { toTf: null, fromTf: null };
/** conv [O, I, kh, kw] -> [kh, kw, I, O]; depthwise [C, 1, kh, kw] -> [kh, kw, C, 1]; transposed conv [I, O, kh, kw] -> [kh, kw, O, I]. */
const CONV: Layout = { toTf: [2, 3, 1, 0], fromTf: [3, 2, 0, 1] };
const DEPTHWISE: Layout = { toTf: [2, 3, 0, 1], fromTf: [2, 3, 0, 1] };
const DENSE: Layout = { toTf: [1, 0], fromTf: [1, 0] };

export interface ForwardOptions {
  /** Batch statistics in BatchNorm, dropout and drop-path active. Default false. */
  training?: boolean;
  /** Keep BatchNorm in inference mode (running statistics, no updates) even when training. */
  freezeBatchNorm?: boolean;
  /** Seed for dropout and drop-path masks. */
  seed?: number;
}

export interface ForwardResult {
  /** Graph outputs; feature maps are NHWC here. */
  outputs: Record<string, T>;
  /** New BatchNorm running statistics computed in training mode (kept tensors; apply with applyBatchNormUpdates). */
  bnUpdates: [tf.Variable, T][];
}

const NHWC_AXIS = [0, 3, 1, 2];

/**
 * A graph bound to tfjs variables. Weights are converted once from canonical OIHW to tfjs layouts; `exportWeights`
 * converts back, so what training changes loads in any backend.
 */
export class TfjsModel {
  readonly variables = new Map<string, tf.Variable>();
  private readonly layouts = new Map<string, Layout>();

  constructor(
    readonly graph: Graph,
    weights: TensorMap,
  ) {
    const layoutOf = new Map<string, Layout>();
    for (const node of graph.nodes) {
      if (node.kind === 'conv2d') {
        const dw = node.groups > 1 && node.groups === node.inChannels && node.outChannels === node.inChannels;
        if (node.groups > 1 && !dw)
          throw new InvalidSpecError(`node ${node.name}.groups`, node.groups, 'tfjs runs groups 1 or depthwise (groups = channels) convolutions');
        layoutOf.set(node.params.weight, dw ? DEPTHWISE : CONV);
      } else if (node.kind === 'convTranspose') {
        if (node.groups !== 1) throw new InvalidSpecError(`node ${node.name}.groups`, node.groups, 'tfjs runs transposed convolutions with groups 1');
        layoutOf.set(node.params.weight, CONV);
      } else if (node.kind === 'dense') layoutOf.set(node.params.weight, DENSE);
    }
    for (const p of graph.parameters) {
      const layout = layoutOf.get(p.name) ?? IDENTITY;
      this.layouts.set(p.name, layout);
      const v = tf.tidy(() => {
        const t = tf.tensor(weightData(weights, p.name), p.shape, 'float32');
        return layout.toTf ? tf.transpose(t, layout.toTf) : t;
      });
      this.variables.set(p.name, tf.variable(v, p.trainable, `${p.name}_${Math.random().toString(36).slice(2, 8)}`));
      v.dispose();
    }
  }

  /** Trainable parameters (not BatchNorm running statistics). */
  trainableNames(): string[] {
    return this.graph.parameters.filter((p) => p.trainable).map((p) => p.name);
  }

  private v(name: string): tf.Variable {
    const x = this.variables.get(name);
    if (!x) throw new Error(`parameter "${name}" is not bound`);
    return x;
  }

  /** Runs the graph on an NHWC batch. Call inside tf.tidy (or let the runner do it). */
  forward(input: T4, o: ForwardOptions = {}): ForwardResult {
    const values = new Map<string, T>([[this.graph.inputs[0]!.name, input]]);
    const bnUpdates: [tf.Variable, T][] = [];
    let seed = o.seed ?? 0;
    for (const node of this.graph.nodes) {
      const xs = node.inputs.map((i) => {
        const t = values.get(i);
        if (!t) throw new Error(`node "${node.name}": input "${i}" has not been computed`);
        return t;
      });
      values.set(node.name, this.apply(node, xs, o, bnUpdates, () => seed++));
    }
    return { outputs: Object.fromEntries(this.graph.outputs.map((n) => [n, values.get(n)!])), bnUpdates };
  }

  private apply(node: GraphNode, xs: T[], o: ForwardOptions, bnUpdates: [tf.Variable, T][], nextSeed: () => number): T {
    const x = xs[0]!;
    const training = o.training ?? false;
    switch (node.kind) {
      case 'conv2d': {
        const w = this.v(node.params.weight) as unknown as T4;
        const pad = convPad(node.padding, node.kernel, node.dilation);
        const depthwise = this.layouts.get(node.params.weight) === DEPTHWISE;
        let y = depthwise
          ? tf.depthwiseConv2d(x as T4, w, node.stride, pad, 'NHWC', node.dilation)
          : tf.conv2d(x as T4, w, node.stride, pad, 'NHWC', node.dilation);
        if (node.params.bias) y = tf.add(y, this.v(node.params.bias));
        return y;
      }
      case 'convTranspose': {
        const w = this.v(node.params.weight) as unknown as T4;
        const [n, h, wd] = (x as T4).shape;
        const [kh, kw] = node.kernel;
        const [sh, sw] = node.stride;
        const fullH = (h - 1) * sh + kh;
        const fullW = (wd - 1) * sw + kw;
        let y: T = tf.conv2dTranspose(x as T4, w, [n, fullH, fullW, node.outChannels], node.stride, 'valid');
        const [t, l, b, r] = node.pads;
        const [oph, opw] = node.outputPadding;
        const outH = fullH - t - b + oph;
        const outW = fullW - l - r + opw;
        y = tf.pad(y, [[0, 0], [0, Math.max(0, outH + t - fullH)], [0, Math.max(0, outW + l - fullW)], [0, 0]]);
        y = tf.slice(y, [0, t, l, 0], [n, outH, outW, node.outChannels]);
        if (node.params.bias) y = tf.add(y, this.v(node.params.bias));
        return y;
      }
      case 'batchNorm': {
        const p = node.params;
        const mean = this.v(p.runningMean);
        const variance = this.v(p.runningVar);
        if (training && !o.freezeBatchNorm) {
          const axes = x.rank === 4 ? [0, 1, 2] : [0];
          // Not tf.moments: its internal same-dtype cast sits on the gradient path and tfjs cannot backprop it.
          const batchMean = tf.mean(x, axes);
          const m = { mean: batchMean, variance: tf.mean(tf.square(tf.sub(x, batchMean)), axes) };
          const count = x.size / node.channels;
          const unbiased = tf.mul(m.variance, count / Math.max(1, count - 1));
          const mom = node.momentum;
          bnUpdates.push([mean, tf.keep(tf.add(tf.mul(mean, 1 - mom), tf.mul(m.mean, mom)))]);
          bnUpdates.push([variance, tf.keep(tf.add(tf.mul(variance, 1 - mom), tf.mul(unbiased, mom)))]);
          // Written out rather than tf.batchNorm, whose gradient tiles every statistic to the input's size.
          const scale = tf.mul(this.v(p.weight), tf.rsqrt(tf.add(m.variance, node.eps)));
          return tf.add(tf.mul(tf.sub(x, m.mean), scale), this.v(p.bias));
        }
        return tf.batchNorm(x, mean, variance, this.v(p.bias), this.v(p.weight), node.eps);
      }
      case 'groupNorm': {
        // NHWC here: [N, H, W, G, C / G], moments over H, W and the group's channels.
        const [n, h, w, c] = (x as T4).shape;
        const g = tf.reshape(x, [n, h, w, node.groups, c / node.groups]);
        const mean = tf.mean(g, [1, 2, 4], true);
        const centred = tf.sub(g, mean);
        const variance = tf.mean(tf.square(centred), [1, 2, 4], true);
        const normed = tf.reshape(tf.mul(centred, tf.rsqrt(tf.add(variance, node.eps))), [n, h, w, c]);
        return tf.add(tf.mul(normed, this.v(node.params.weight)), this.v(node.params.bias));
      }
      case 'activation':
        return activation(node.fn, x);
      case 'softmax':
        return tf.softmax(x, x.rank === 4 ? NHWC_AXIS[node.axis] : node.axis);
      case 'add':
        return xs.length === 2 ? tf.add(x, xs[1]!) : tf.addN(xs);
      case 'mul':
        return tf.mul(x, xs[1]!);
      case 'globalAvgPool':
        return tf.mean(x, [1, 2], node.keepDims);
      case 'flatten':
        return x.rank === 4 ? tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0]!, -1]) : tf.reshape(x, [x.shape[0]!, -1]);
      case 'dense': {
        const y = tf.matMul(x as ReturnType<typeof tf.tensor2d>, this.v(node.params.weight) as unknown as ReturnType<typeof tf.tensor2d>);
        return node.params.bias ? tf.add(y, this.v(node.params.bias)) : y;
      }
      case 'dropout':
        return training && node.rate > 0 ? tf.dropout(x, node.rate, undefined, nextSeed()) : x;
      case 'dropPath': {
        if (!training || node.rate === 0) return x;
        const keep = 1 - node.rate;
        const mask = tf.floor(tf.add(tf.randomUniform([x.shape[0]!, ...x.shape.slice(1).map(() => 1)], 0, 1, 'float32', nextSeed()), keep));
        return tf.mul(x, tf.div(mask, keep));
      }
      case 'maxPool': {
        if (node.padding.mode === 'same') return tf.maxPool(x as T4, node.kernel, node.stride, 'same');
        const [t, l, b, r] = fixedPads(node.padding, node.kernel)!;
        const padded = t || l || b || r ? tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], -3.4e38) : x;
        return tf.maxPool(padded as T4, node.kernel, node.stride, 'valid');
      }
      case 'resize': {
        const [, h, w] = (x as T4).shape;
        const size: [number, number] = xs[1] ? [xs[1].shape[1]!, xs[1].shape[2]!] : [Math.floor(h * node.scale!), Math.floor(w * node.scale!)];
        return node.mode === 'nearest'
          ? tf.image.resizeNearestNeighbor(x as T4, size, false, false)
          : tf.image.resizeBilinear(x as T4, size, node.alignCorners, !node.alignCorners);
      }
      case 'concat':
        return tf.concat(xs, x.rank === 4 ? NHWC_AXIS[node.axis] : node.axis);
      case 'weightedSum': {
        const raw = this.v(node.params.weight);
        const w =
          node.normalization === 'fast' ? tf.div(tf.relu(raw), tf.add(tf.sum(tf.relu(raw)), node.epsilon)) : tf.softmax(raw as unknown as ReturnType<typeof tf.tensor1d>);
        const parts = tf.unstack(w);
        return tf.addN(xs.map((xi, i) => tf.mul(xi, parts[i]!)));
      }
      default:
        return assertNever(node, 'node kind');
    }
  }

  /** Writes training's new BatchNorm statistics into their variables and frees the kept tensors. */
  static applyBatchNormUpdates(updates: [tf.Variable, T][]): void {
    for (const [v, t] of updates) {
      v.assign(t);
      t.dispose();
    }
  }

  /** Every parameter and buffer under its canonical name, in PyTorch layout (float32). */
  exportWeights(): TensorMap {
    const out: TensorMap = new Map();
    for (const p of this.graph.parameters) {
      const layout = this.layouts.get(p.name)!;
      const data = tf.tidy(() => {
        const v = this.v(p.name);
        return (layout.fromTf ? tf.transpose(v, layout.fromTf) : v).dataSync() as Float32Array;
      });
      out.set(p.name, float32Tensor([...p.shape], Float32Array.from(data)));
    }
    return out;
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

function convPad(padding: Padding, kernel: [number, number], dilation: [number, number]): 'same' | [[number, number], [number, number], [number, number], [number, number]] {
  const pads = fixedPads(padding, kernel, dilation);
  if (!pads) return 'same';
  const [t, l, b, r] = pads;
  return [[0, 0], [t, b], [l, r], [0, 0]];
}

function activation(fn: Extract<GraphNode, { kind: 'activation' }>['fn'], x: T): T {
  switch (fn) {
    case 'identity':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'relu6':
      return tf.relu6(x);
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
    case 'hardSwish':
      return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
    case 'hardSigmoid':
      return tf.div(tf.relu6(tf.add(x, 3)), 6);
    default:
      return assertNever(fn, 'activation');
  }
}

/** NCHW float32 tensor -> NHWC tfjs tensor. */
export function toNhwc(t: Tensor): T4 {
  return tf.tidy(() => tf.transpose(tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]), [0, 2, 3, 1]));
}
