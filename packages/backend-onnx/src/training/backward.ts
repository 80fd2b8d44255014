import { type ActivationFn, assertNever, type GraphNode, resolvePads } from '@effnet/core';
import { type ConvGeometry, convInputGrad, convWeightGrad } from './conv-grads.js';
import type { TrainingEmitter } from './emitter.js';
import { resizeMatrix } from './resize-matrix.js';

/** What a backward rule reads and where it puts its results. */
export interface BackwardContext {
  e: TrainingEmitter;
  /** Per node, the tensors the forward pass kept for it. */
  saved: Map<string, Record<string, string>>;
  /** Whether a tensor (graph input or node output) needs its gradient. */
  needsGrad(tensor: string): boolean;
  trainable(param: string): boolean;
  /** A contribution to a tensor's gradient, of its shape or broadcastable to it (contributions are summed). */
  addGrad(tensor: string, grad: string): void;
  /** A contribution to a parameter's gradient (a parameter read by several nodes gets the sum). */
  addParamGrad(param: string, grad: string): void;
  trainBatchNorm: boolean;
  /** NCHWc block size when depthwise convs may use ORT's NCHWc kernels. */
  nchwcBlock?: number;
}

const prod = (d: number[]) => d.reduce((a, b) => a * b, 1);

/** The geometry of a conv2d node at the static shapes of the training graph. */
export function convGeometry(e: TrainingEmitter, node: Extract<GraphNode, { kind: 'conv2d' }>): ConvGeometry {
  const inDims = e.shape(node.inputs[0]!);
  return {
    inDims,
    outDims: e.shape(node.name),
    kernel: node.kernel,
    stride: node.stride,
    dilation: node.dilation,
    groups: node.groups,
    pads: resolvePads(node.padding, inDims[2]!, inDims[3]!, node.kernel, node.stride, node.dilation),
  };
}

/**
 * Emits the gradients of one node's inputs and parameters given `dy`, the gradient of its output. One case per node
 * kind: a new kind fails to compile here until it has a backward rule.
 */
export function emitBackward(ctx: BackwardContext, node: GraphNode, dy: string): void {
  const { e } = ctx;
  const x = node.inputs[0]!;
  const out = node.name;
  const h = `grad/${node.name}`;
  const dims = e.shape(out);
  const wantX = ctx.needsGrad(x);
  switch (node.kind) {
    case 'conv2d': {
      const g = convGeometry(e, node);
      if (node.params.bias && ctx.trainable(node.params.bias)) ctx.addParamGrad(node.params.bias, e.reduceSum(dy, [0, 2, 3], false, `${h}/db`));
      if (ctx.trainable(node.params.weight)) ctx.addParamGrad(node.params.weight, convWeightGrad(e, x, dy, g, h, ctx.nchwcBlock));
      if (wantX) ctx.addGrad(x, convInputGrad(e, dy, node.params.weight, g, h, ctx.nchwcBlock));
      return;
    }
    case 'convTranspose': {
      // y = convT(x, w) is the adjoint of a conv from y's space to x's: dx is that conv applied to dy, and dw is
      // that conv's weight gradient with dy as its input and x as its output gradient.
      const [N, O, Hout, Wout] = dims as [number, number, number, number];
      const inDims = e.shape(x);
      const [t, l, b, r] = node.pads;
      const [oph, opw] = node.outputPadding;
      // Rows the output padding appended past the full result received nothing from x: drop them from dy.
      const extraH = Math.max(0, oph - b);
      const extraW = Math.max(0, opw - r);
      const dyIn = extraH || extraW ? e.slice(dy, [0, 0], [Hout - extraH, Wout - extraW], [2, 3], undefined, `${h}/dy_crop`, [N, O, Hout - extraH, Wout - extraW]) : dy;
      const g: ConvGeometry = {
        inDims: e.shape(dyIn),
        outDims: inDims,
        kernel: node.kernel,
        stride: node.stride,
        dilation: [1, 1],
        groups: node.groups,
        pads: [t, l, Math.max(0, b - oph), Math.max(0, r - opw)],
      };
      if (node.params.bias && ctx.trainable(node.params.bias)) ctx.addParamGrad(node.params.bias, e.reduceSum(dy, [0, 2, 3], false, `${h}/db`));
      if (ctx.trainable(node.params.weight)) ctx.addParamGrad(node.params.weight, convWeightGrad(e, dyIn, x, g, h));
      if (wantX) ctx.addGrad(x, e.t('Conv', [dyIn, node.params.weight], { kernel_shape: node.kernel, strides: node.stride, group: node.groups, pads: g.pads }, `${h}/dx`, inDims));
      return;
    }
    case 'batchNorm':
      return batchNormBackward(ctx, node, dy);
    case 'groupNorm': {
      // y = gamma * xhat + beta with xhat normalised per (sample, group): the layer-norm gradient within each group,
      // dx = invStd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
      const { xhat, xhat4, invStd } = ctx.saved.get(node.name)! as { xhat: string; xhat4: string; invStd: string };
      const c = node.channels;
      if (ctx.trainable(node.params.bias)) ctx.addParamGrad(node.params.bias, e.reduceSum(dy, [0, 2, 3], false, `${h}/dbeta`));
      if (ctx.trainable(node.params.weight)) ctx.addParamGrad(node.params.weight, e.reduceSum(e.mul(dy, xhat4, `${h}/dy_xhat`, dims), [0, 2, 3], false, `${h}/dgamma`));
      if (!wantX) return;
      const gd = e.shape(xhat);
      const dxhat = e.mul(dy, e.reshape(node.params.weight, [c, 1, 1], `${h}/gamma`), `${h}/dxhat`, dims);
      const dxg = e.reshape(dxhat, gd, `${h}/dxhat_grouped`);
      const m1 = e.reduceMean(dxg, [2], true, `${h}/mean_dxhat`);
      const m2 = e.reduceMean(e.mul(dxg, xhat, `${h}/dxhat_xhat`, gd), [2], true, `${h}/mean_dxhat_xhat`);
      const inner = e.sub(e.sub(dxg, m1, `${h}/centred`, gd), e.mul(xhat, m2, `${h}/xhat_m2`, gd), `${h}/inner`, gd);
      ctx.addGrad(x, e.reshape(e.mul(inner, invStd, `${h}/dx_grouped`, gd), dims, `${h}/dx`));
      return;
    }
    case 'activation':
      if (wantX) ctx.addGrad(x, activationGrad(e, node.fn, x, out, dy, h));
      return;
    case 'softmax': {
      if (!wantX) return;
      const dot = e.reduceSum(e.mul(dy, out, `${h}/dy_y`, dims), [node.axis], true, `${h}/dot`);
      ctx.addGrad(x, e.mul(out, e.sub(dy, dot, `${h}/centred`, dims), `${h}/dx`, dims));
      return;
    }
    case 'add':
      for (const i of node.inputs) if (ctx.needsGrad(i)) ctx.addGrad(i, dy);
      return;
    case 'mul': {
      const [a, b] = node.inputs as [string, string];
      if (ctx.needsGrad(a)) ctx.addGrad(a, e.mul(dy, b, `${h}/da`, dims));
      if (ctx.needsGrad(b)) {
        const bDims = e.shape(b);
        const full = e.mul(dy, a, `${h}/db_full`, dims);
        // A gate [N, C, 1, 1] was broadcast over H, W: its gradient sums over them.
        const axes = bDims.flatMap((d, i) => (d === 1 && dims[i] !== 1 ? [i] : []));
        ctx.addGrad(b, axes.length ? e.reduceSum(full, axes, true, `${h}/db`) : full);
      }
      return;
    }
    case 'globalAvgPool': {
      if (!wantX) return;
      const [N, C, H, W] = e.shape(x) as [number, number, number, number];
      // dy / HW at [N, C, 1, 1]: broadcast by the sum with the input's other gradient contributions (SE's gate
      // product), which saves the Expand pass.
      ctx.addGrad(x, e.mul(e.reshape(dy, [N, C, 1, 1], `${h}/dy4`), e.floatConst([1 / (H * W)]), `${h}/dx_mean`, [N, C, 1, 1]));
      return;
    }
    case 'flatten':
      if (wantX) ctx.addGrad(x, e.reshape(dy, e.shape(x), `${h}/dx`));
      return;
    case 'dense': {
      const p = node.params;
      if (p.bias && ctx.trainable(p.bias)) ctx.addParamGrad(p.bias, e.reduceSum(dy, [0], false, `${h}/db`));
      if (ctx.trainable(p.weight)) ctx.addParamGrad(p.weight, e.t('Gemm', [dy, x], { transA: 1 }, `${h}/dw`, [node.outFeatures, node.inFeatures]));
      if (wantX) ctx.addGrad(x, e.t('MatMul', [dy, p.weight], undefined, `${h}/dx`, e.shape(x)));
      return;
    }
    case 'dropout':
    case 'dropPath': {
      if (!wantX) return;
      const mask = ctx.saved.get(node.name)?.mask;
      ctx.addGrad(x, mask ? e.mul(dy, mask, `${h}/dx`, dims) : dy);
      return;
    }
    case 'maxPool': {
      if (!wantX) return;
      // Route each output's gradient to the input position of its maximum (ORT's flat argmax indices).
      const inDims = e.shape(x);
      const indices = ctx.saved.get(node.name)!.indices!;
      const zeros = e.t('ConstantOfShape', [e.int64Const([prod(inDims)])], undefined, `${h}/zeros`, [prod(inDims)]);
      const flatIdx = e.reshape(indices, [prod(dims)], `${h}/idx`);
      const flatDy = e.reshape(dy, [prod(dims)], `${h}/dy_flat`);
      const scattered = e.t('ScatterElements', [zeros, flatIdx, flatDy], { axis: 0, reduction: 'add' }, `${h}/scatter`, [prod(inDims)]);
      ctx.addGrad(x, e.reshape(scattered, inDims, `${h}/dx`));
      return;
    }
    case 'resize': {
      if (!wantX) return;
      const inDims = e.shape(x);
      const [N, C, H, W] = inDims as [number, number, number, number];
      const [, , Ho, Wo] = dims as [number, number, number, number];
      const s = node.scale;
      if (node.mode === 'nearest' && s !== undefined && Number.isInteger(s) && Ho === H * s && Wo === W * s) {
        // Each input pixel was copied to an s x s block: its gradient is the block's sum.
        const blocks = e.reshape(dy, [N, C, H, s, W, s], `${h}/blocks`);
        ctx.addGrad(x, e.reduceSum(blocks, [3, 5], false, `${h}/dx`));
        return;
      }
      // Resize is separable, y = Rh x Rw^T per channel, so dx = Rh^T dy Rw with the interpolation matrices.
      const rh = resizeMatrix(node, H, Ho, s);
      const rw = resizeMatrix(node, W, Wo, s);
      const byCols = e.t('MatMul', [dy, e.floatConst(Array.from(rw), [Wo, W])], undefined, `${h}/dy_rw`, [N, C, Ho, W]);
      ctx.addGrad(x, e.t('MatMul', [e.floatConst(Array.from(transpose(rh, Ho, H)), [H, Ho]), byCols], undefined, `${h}/dx`, inDims));
      return;
    }
    case 'concat': {
      const sizes = node.inputs.map((i) => e.shape(i)[node.axis]!);
      const parts = node.inputs.length === 1 ? [dy] : e.tn('Split', [dy, e.int64Const(sizes)], node.inputs.length, { axis: node.axis }, `${h}/parts`);
      node.inputs.forEach((inp, i) => {
        if (!ctx.needsGrad(inp)) return;
        e.dims.set(parts[i]!, e.shape(inp));
        ctx.addGrad(inp, parts[i]!);
      });
      return;
    }
    case 'weightedSum': {
      const saved = ctx.saved.get(node.name)!;
      const k = node.inputs.length;
      node.inputs.forEach((inp, i) => {
        if (ctx.needsGrad(inp)) ctx.addGrad(inp, e.mul(dy, saved[`w${i}`]!, `${h}/dx${i}`, dims));
      });
      const raw = node.params.weight;
      if (!ctx.trainable(raw)) return;
      // dL/dw_i = <dy, x_i>, then back through the normalisation.
      const all = dims.map((_, i) => i);
      const dw = e.t('Concat', node.inputs.map((inp, i) => e.reshape(e.reduceSum(e.mul(dy, inp, `${h}/dy_x${i}`, dims), all, false, `${h}/dw${i}`), [1])), { axis: 0 }, `${h}/dw_norm`, [k]);
      const w = saved.w!;
      const dot = e.reduceSum(e.mul(dw, w, `${h}/dw_w`, [k]), [0], true, `${h}/dot`);
      const centred = e.sub(dw, dot, `${h}/dw_centred`, [k]);
      if (node.normalization === 'softmax') {
        ctx.addParamGrad(raw, e.mul(w, centred, `${h}/draw`, [k]));
        return;
      }
      // w = relu(r) / (sum relu(r) + eps): dL/drelu_j = (dw_j - <dw, w>) / denominator.
      const relu = e.t('Relu', [raw], undefined, `${h}/relu_w`, [k]);
      const denom = e.add(e.reduceSum(relu, [0], true), e.floatConst([node.epsilon]), `${h}/denom`, [1]);
      const dRelu = e.t('Div', [centred, denom], undefined, `${h}/drelu`, [k]);
      const positive = e.t('Greater', [raw, e.floatConst([0])], undefined, `${h}/positive`, [k]);
      ctx.addParamGrad(raw, e.t('Where', [positive, dRelu, e.floatConst([0])], undefined, `${h}/draw`, [k]));
      return;
    }
    default:
      assertNever(node, 'node kind');
  }
}

function transpose(m: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j]!;
  return t;
}

function batchNormBackward(ctx: BackwardContext, node: Extract<GraphNode, { kind: 'batchNorm' }>, dy: string): void {
  const { e } = ctx;
  const x = node.inputs[0]!;
  const p = node.params;
  const h = `grad/${node.name}`;
  const dims = e.shape(node.name);
  const c = node.channels;
  const axes = dims.length === 4 ? [0, 2, 3] : [0];
  const stat = dims.length === 4 ? [1, c, 1, 1] : [1, c];
  const count = prod(dims) / c;
  const wantX = ctx.needsGrad(x);
  const wantGamma = ctx.trainable(p.weight);
  const dbeta = e.reduceSum(dy, axes, true, `${h}/dbeta`);
  if (ctx.trainable(p.bias)) ctx.addParamGrad(p.bias, e.reshape(dbeta, [c]));
  if (!ctx.trainBatchNorm) {
    // Running statistics: y = gamma * (x - mean) / sqrt(var + eps) + beta, an affine map of x.
    const invStd = e.t('Reciprocal', [e.t('Sqrt', [e.add(p.runningVar, e.floatConst([node.eps]), `${h}/var_eps`, [c])], undefined, `${h}/std`, [c])], undefined, `${h}/inv_std`, [c]);
    if (wantGamma) {
      const shift = e.t('Neg', [e.mul(p.runningMean, invStd, `${h}/mean_scaled`, [c])], undefined, `${h}/shift`, [c]);
      const xhat = e.affine(x, invStd, shift, c, `${h}/xhat`);
      ctx.addParamGrad(p.weight, e.reduceSum(e.mul(dy, xhat, `${h}/dy_xhat`, dims), axes, false, `${h}/dgamma`));
    }
    if (wantX) ctx.addGrad(x, e.mul(dy, e.reshape(e.mul(p.weight, invStd, `${h}/scale`, [c]), stat), `${h}/dx`, dims));
    return;
  }
  const { centred, invStd, scale } = ctx.saved.get(node.name)! as { centred: string; invStd: string; scale: string };
  if (!wantX && !wantGamma) return;
  // With xhat = centred * invStd: dgamma = invStd * sum(dy * centred).
  const dyCentred = e.reduceSum(e.mul(dy, centred, `${h}/dy_centred`, dims), axes, true, `${h}/dy_centred_sum`);
  const dgamma = e.mul(dyCentred, invStd, `${h}/dgamma`, stat);
  if (wantGamma) ctx.addParamGrad(p.weight, e.reshape(dgamma, [c]));
  if (!wantX) return;
  // dx = a * (dy - (dbeta + xhat * dgamma) / M) with a = gamma / std
  //    = a * dy - (a * invStd * dgamma / M) * centred - a * dbeta / M: one affine pass, one product, one difference.
  const a = e.reshape(scale, stat);
  const aOverM = e.mul(a, e.floatConst([1 / count]), `${h}/a_m`, stat);
  const k2 = e.mul(e.mul(aOverM, invStd, `${h}/a_m_inv_std`, stat), dgamma, `${h}/k2`, stat);
  const k3 = e.t('Neg', [e.mul(aOverM, dbeta, `${h}/k3`, stat)], undefined, `${h}/neg_k3`, stat);
  const scaled = e.affine(dy, scale, e.reshape(k3, [c]), c, `${h}/dy_scaled`);
  ctx.addGrad(x, e.sub(scaled, e.mul(centred, k2, `${h}/centred_k2`, dims), `${h}/dx`, dims));
}

/** dL/dx of y = fn(x), from x, y and dy. */
function activationGrad(e: TrainingEmitter, fn: ActivationFn, x: string, y: string, dy: string, h: string): string {
  const dims = e.shape(y);
  const zero = e.floatConst([0]);
  const one = e.floatConst([1]);
  const between = (lo: number, hi: number) =>
    e.t('And', [e.t('Greater', [x, e.floatConst([lo])], undefined, `${h}/above`), e.t('Less', [x, e.floatConst([hi])], undefined, `${h}/below`)], undefined, `${h}/inside`);
  switch (fn) {
    case 'identity':
      return dy;
    case 'relu':
      return e.t('Where', [e.t('Greater', [y, zero], undefined, `${h}/active`), dy, zero], undefined, `${h}/dx`, dims);
    case 'relu6':
      // PyTorch's hardtanh backward: the gradient passes strictly inside (0, 6).
      return e.t('Where', [between(0, 6), dy, zero], undefined, `${h}/dx`, dims);
    case 'silu': {
      // d/dx x*s(x) = s + y * (1 - s); the sigmoid is recomputed so the forward's Sigmoid+Mul can fuse.
      const s = e.t('Sigmoid', [x], undefined, `${h}/sigmoid`, dims);
      const slope = e.add(s, e.mul(y, e.sub(one, s, `${h}/one_minus_s`, dims), `${h}/y_1ms`, dims), `${h}/slope`, dims);
      return e.mul(dy, slope, `${h}/dx`, dims);
    }
    case 'sigmoid':
      return e.mul(dy, e.mul(y, e.sub(one, y, `${h}/one_minus_y`, dims), `${h}/slope`, dims), `${h}/dx`, dims);
    case 'tanh':
      return e.mul(dy, e.sub(one, e.mul(y, y, `${h}/y2`, dims), `${h}/slope`, dims), `${h}/dx`, dims);
    case 'gelu': {
      // Phi(x) + x * phi(x), phi the standard normal density.
      const cdf = e.mul(e.add(e.t('Erf', [e.mul(x, e.floatConst([Math.SQRT1_2]), `${h}/scaled`, dims)], undefined, `${h}/erf`, dims), one, `${h}/one_plus`, dims), e.floatConst([0.5]), `${h}/cdf`, dims);
      const pdf = e.mul(e.t('Exp', [e.mul(e.mul(x, x, `${h}/x2`, dims), e.floatConst([-0.5]), `${h}/half_x2`, dims)], undefined, `${h}/exp`, dims), e.floatConst([1 / Math.sqrt(2 * Math.PI)]), `${h}/pdf`, dims);
      return e.mul(dy, e.add(cdf, e.mul(x, pdf, `${h}/x_pdf`, dims), `${h}/slope`, dims), `${h}/dx`, dims);
    }
    case 'hardSwish': {
      // PyTorch: 0 below -3, x/3 + 1/2 on [-3, 3], 1 above 3.
      const ramp = e.add(e.mul(x, e.floatConst([1 / 3]), `${h}/x_3`, dims), e.floatConst([0.5]), `${h}/ramp`, dims);
      const upper = e.t('Where', [e.t('Greater', [x, e.floatConst([3])], undefined, `${h}/above`), one, ramp], undefined, `${h}/upper`, dims);
      const slope = e.t('Where', [e.t('Less', [x, e.floatConst([-3])], undefined, `${h}/below`), zero, upper], undefined, `${h}/slope`, dims);
      return e.mul(dy, slope, `${h}/dx`, dims);
    }
    case 'hardSigmoid':
      return e.t('Where', [between(-3, 3), e.mul(dy, e.floatConst([1 / 6]), `${h}/dy_6`, dims), zero], undefined, `${h}/dx`, dims);
    default:
      return assertNever(fn, 'activation');
  }
}
