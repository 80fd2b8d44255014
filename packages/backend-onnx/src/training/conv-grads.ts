import type { TrainingEmitter } from './emitter.js';
import { blocked, emitNchwcDepthwise, nchwcConv } from './nchwc.js';

/** A convolution with every size resolved: NCHW dims of its input and output, explicit [top, left, bottom, right] pads. */
export interface ConvGeometry {
  inDims: number[];
  outDims: number[];
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  groups: number;
  pads: [number, number, number, number];
}

export const isPointwise = (g: ConvGeometry): boolean =>
  g.kernel[0] === 1 && g.kernel[1] === 1 && g.stride[0] === 1 && g.stride[1] === 1 && g.pads.every((p) => p === 0);

export const isDepthwise = (g: ConvGeometry): boolean => g.groups > 1 && g.groups === g.inDims[1] && g.groups === g.outDims[1];

/** Layout of a [O, I/g, kh, kw] conv weight as the [I, O/g, kh, kw] weight of the conv that maps O channels back to I. */
function swapGroupedIO(e: TrainingEmitter, w: string, o: number, i: number, g: number, kh: number, kw: number): string {
  if (g === 1) return e.transpose(w, [1, 0, 2, 3], 'w_t');
  if (o === g && i === g) return w;
  const five = e.reshape(w, [g, o / g, i / g, kh, kw]);
  return e.reshape(e.transpose(five, [0, 2, 1, 3, 4], 'w_t'), [i, o / g, kh, kw]);
}

/**
 * dL/dx of y = conv(x, w). Pointwise: a 1x1 conv with the transposed weight. Stride 1: a conv of dy with the
 * spatially flipped (and, for groups, channel-swapped) kernel and pads d(k-1) - p. Otherwise ConvTranspose with the
 * forward pads (output_padding makes up rows the forward never read).
 */
export function convInputGrad(e: TrainingEmitter, dy: string, w: string, g: ConvGeometry, hint: string, nchwcBlock?: number): string {
  const [, I, H, W] = g.inDims as [number, number, number, number];
  const [, O, Ho, Wo] = g.outDims as [number, number, number, number];
  const [kh, kw] = g.kernel;
  const [dh, dw] = g.dilation;
  const [t, l, b, r] = g.pads;
  if (isPointwise(g) && g.groups === 1) {
    return e.t('Conv', [dy, e.transpose(w, [1, 0, 2, 3], `${hint}/w_t`)], { kernel_shape: [1, 1] }, `${hint}/dx`, g.inDims);
  }
  const flippedPads = [dh * (kh - 1) - t, dw * (kw - 1) - l, dh * (kh - 1) - b, dw * (kw - 1) - r];
  if (g.stride[0] === 1 && g.stride[1] === 1 && flippedPads.every((p) => p >= 0)) {
    const big = -(2 ** 62);
    const flipped = e.slice(w, [-1, -1], [big, big], [2, 3], [-1, -1], `${hint}/w_flip`, [O, I / g.groups, kh, kw]);
    if (nchwcBlock && isDepthwise(g) && I % nchwcBlock === 0)
      return emitNchwcDepthwise(e, dy, flipped, { channels: I, kernel: g.kernel, stride: [1, 1], dilation: g.dilation, pads: flippedPads, outDims: g.inDims }, e.fresh(`${hint}/dx`), hint);
    const wt = swapGroupedIO(e, flipped, O, I, g.groups, kh, kw);
    return e.t('Conv', [dy, wt], { kernel_shape: [kh, kw], dilations: [dh, dw], group: g.groups, pads: flippedPads }, `${hint}/dx`, g.inDims);
  }
  const full = [(Ho - 1) * g.stride[0] + dh * (kh - 1) + 1, (Wo - 1) * g.stride[1] + dw * (kw - 1) + 1] as const;
  const endPads = [Math.max(0, full[0] - t - H), Math.max(0, full[1] - l - W)];
  const outputPadding = [Math.max(0, t + H - full[0]), Math.max(0, l + W - full[1])];
  return e.t('ConvTranspose', [dy, w], {
    kernel_shape: [kh, kw],
    strides: g.stride,
    dilations: g.dilation,
    group: g.groups,
    pads: [t, l, endPads[0]!, endPads[1]!],
    output_padding: outputPadding,
  }, `${hint}/dx`, g.inDims);
}

/**
 * dL/dw of y = conv(x, w), shape [O, I/g, kh, kw]. Pointwise: batched MatMul(dy, x^T) summed over the batch.
 * Depthwise: x as [1, N*C, H, W] convolved by dy as an [N*C, 1, Ho, Wo] kernel (dilation = stride), summed over N.
 * Groups 1 with more input channels than kernel taps: one Gemm per tap. Otherwise the batch becomes the reduction
 * axis: x as [I/g, g*N, H, W] convolved by dy^T [O, N, Ho, Wo] in g groups.
 */
export function convWeightGrad(e: TrainingEmitter, x: string, dy: string, g: ConvGeometry, hint: string, nchwcBlock?: number): string {
  const [N, I, H, W] = g.inDims as [number, number, number, number];
  const [, O, Ho, Wo] = g.outDims as [number, number, number, number];
  const [kh, kw] = g.kernel;
  const G = g.groups;
  if (isPointwise(g) && G === 1) {
    const x3 = e.reshape(x, [N, I, H * W], `${hint}/x3`);
    const dy3 = e.reshape(dy, [N, O, H * W], `${hint}/dy3`);
    // Batched MatMul writes and re-reads N partial [O, I] products; transposing x and dy to [C, N*HW] for one Gemm
    // moves (O + I) * N * HW values. Take whichever moves less (measured: equal at O*I/(O+I) ~ HW).
    if ((O * I) / (O + I) < H * W) {
      const prod = e.t('MatMul', [dy3, e.transpose(x3, [0, 2, 1], `${hint}/x3_t`)], undefined, `${hint}/dw_n`, [N, O, I]);
      return e.reshape(e.reduceSum(prod, [0], false, `${hint}/dw_sum`), [O, I, 1, 1], `${hint}/dw`);
    }
    const xt = e.reshape(e.transpose(x3, [1, 0, 2], `${hint}/x_t`), [I, N * H * W], `${hint}/x_cols`);
    const dyt = e.reshape(e.transpose(dy3, [1, 0, 2], `${hint}/dy_t`), [O, N * H * W], `${hint}/dy_cols`);
    return e.reshape(e.t('Gemm', [dyt, xt], { transB: 1 }, `${hint}/dw_gemm`, [O, I]), [O, I, 1, 1], `${hint}/dw`);
  }
  const convAttrs = { kernel_shape: [Ho, Wo], strides: g.dilation, dilations: g.stride, pads: g.pads };
  const outSize = (inSize: number, k: number, stride: number, dil: number, p0: number, p1: number) => Math.floor((inSize + p0 + p1 - dil * (k - 1) - 1) / stride) + 1;
  const kh2 = outSize(H, Ho, g.dilation[0], g.stride[0], g.pads[0], g.pads[2]);
  const kw2 = outSize(W, Wo, g.dilation[1], g.stride[1], g.pads[1], g.pads[3]);
  // The conv's output covers every kernel tap and, when the forward left rows unread, a few more: crop them.
  const crop = (t: string): string => {
    const d = e.shape(t);
    return kh2 === kh && kw2 === kw ? t : e.slice(t, [0, 0], [kh, kw], [2, 3], undefined, `${hint}/dw_crop`, [d[0]!, d[1]!, kh, kw]);
  };
  if (isDepthwise(g)) {
    const dims = [1, N * I, kh2, kw2];
    let r: string;
    if (nchwcBlock && I % nchwcBlock === 0) {
      // The NCHWc layout of x [N, C, H, W] is that of [1, N*C, H, W] (blocks never straddle samples when C is a
      // multiple of the block), so the forward pass's reordered input and the reordered dy serve as they are.
      const xb = e.reshape(blocked(e, x, [N, I, H, W], `${hint}/x`), [1, N * I, H, W], `${hint}/x_nc`);
      const kb = e.reshape(blocked(e, dy, [N, I, Ho, Wo], `${hint}/dy`), [N * I, 1, Ho, Wo], `${hint}/dy_nc`);
      r = nchwcConv(e, xb, kb, { channels: N * I, kernel: [Ho, Wo], stride: g.dilation, dilation: g.stride, pads: g.pads, outDims: dims }, e.fresh(`${hint}/dw_nc`), hint);
    } else {
      const xr = e.reshape(x, [1, N * I, H, W], `${hint}/x_nc`);
      const k = e.reshape(dy, [N * I, 1, Ho, Wo], `${hint}/dy_nc`);
      r = e.t('Conv', [xr, k], { ...convAttrs, group: N * I }, `${hint}/dw_nc`, dims);
    }
    const summed = e.reduceSum(e.reshape(crop(r), [N, I, kh * kw], `${hint}/dw_n`), [0], false, `${hint}/dw_sum`);
    return e.reshape(summed, [I, 1, kh, kw], `${hint}/dw`);
  }
  if (G === 1 && I > kh * kw) {
    // One Gemm per kernel tap over [C, N*Ho*Wo] views (x transposed and padded once, dy transposed once): with more
    // input channels than taps this measured 2x faster than the conv below, whose GEMMs are only kh*kw wide.
    const [t, l, b, r] = g.pads;
    const xt = e.t('Pad', [e.transpose(x, [1, 0, 2, 3], `${hint}/x_t`), e.int64Const([0, 0, t, l, 0, 0, b, r])], undefined, `${hint}/x_pad`, [I, N, H + t + b, W + l + r]);
    const dyt = e.reshape(e.transpose(dy, [1, 0, 2, 3], `${hint}/dy_t`), [O, N * Ho * Wo], `${hint}/dy_cols`);
    const taps: string[] = [];
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++) {
        const [y0, x0] = [i * g.dilation[0], j * g.dilation[1]];
        const tap = e.slice(xt, [y0, x0], [y0 + g.stride[0] * (Ho - 1) + 1, x0 + g.stride[1] * (Wo - 1) + 1], [2, 3], [g.stride[0], g.stride[1]], `${hint}/tap`, [I, N, Ho, Wo]);
        const cols = e.reshape(tap, [I, N * Ho * Wo], `${hint}/tap_cols`);
        taps.push(e.reshape(e.t('Gemm', [dyt, cols], { transB: 1 }, `${hint}/dw_tap`, [O, I]), [O, I, 1], `${hint}/dw_tap3`));
      }
    return e.reshape(e.t('Concat', taps, { axis: 2 }, `${hint}/dw_taps`, [O, I, kh * kw]), [O, I, kh, kw], `${hint}/dw`);
  }
  const Ig = I / G;
  const xt = e.reshape(e.transpose(e.reshape(x, [N, G, Ig, H, W], `${hint}/x5`), [2, 1, 0, 3, 4], `${hint}/x_t`), [Ig, G * N, H, W], `${hint}/x_gn`);
  const k = e.transpose(dy, [1, 0, 2, 3], `${hint}/dy_t`);
  const r = crop(e.t('Conv', [xt, k], { ...convAttrs, group: G }, `${hint}/dw_t`, [Ig, O, kh2, kw2]));
  return e.transpose(r, [1, 0, 2, 3], `${hint}/dw`);
}
