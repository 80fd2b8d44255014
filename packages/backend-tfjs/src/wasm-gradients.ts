import { tf } from './tf.js';

/**
 * Gradient kernels the tfjs wasm backend lacks (Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter and
 * DepthwiseConv2dNativeBackpropInput), written with kernels wasm does have (strided slices, matMul, depthwise conv)
 * so that training runs on wasm at wasm speed. Dilation 1 and channel multiplier 1 (all EfficientNet needs).
 */

type Attrs = Record<string, unknown>;
interface KernelBackend {
  write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object;
  readSync(dataId: object): tf.backend_util.BackendValues;
}

const NAMES = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'] as const;

/**
 * Runs `compute` with tf ops and hands a copy of its result to the engine as the kernel's output. The copy gives the
 * output a data id of its own: ops may return views that share storage with tensors the tidy disposes.
 */
function asKernelOutput(backend: KernelBackend, compute: () => tf.Tensor): tf.TensorInfo {
  const t = tf.tidy(compute);
  const dataId = backend.write(t.dataSync(), t.shape, t.dtype);
  const info = { dataId, shape: t.shape, dtype: t.dtype };
  t.dispose();
  return info;
}

/**
 * A kernel input as a tensor of its own (a copy). Wrapping the engine's data id instead lets ops that return views
 * (identity-like reverse, pad or slice) entangle reference counts, which breaks the wasm backend's bookkeeping.
 */
function tensorOf(info: tf.TensorInfo, backend: unknown): tf.Tensor {
  return tf.tensor((backend as KernelBackend).readSync(info.dataId) as Float32Array, info.shape, info.dtype);
}

function padInfo(xShape: [number, number, number, number], filterShape: [number, number, number, number], attrs: Attrs, depthwise: boolean) {
  const dilations = (attrs.dilations ?? 1) as number | [number, number];
  if (dilations !== 1 && !(Array.isArray(dilations) && dilations[0] === 1 && dilations[1] === 1))
    throw new Error(`wasm gradient kernels support dilation 1 only, got ${JSON.stringify(dilations)}`);
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') throw new Error('wasm gradient kernels support NHWC only');
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides as [number, number],
    1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
    depthwise,
  );
}

/**
 * The (i, j) tap of a padded input: x_pad[n, i + s*h, j + s*w, c] for every output position (h, w). A rank-4
 * slice, then for stride s a 1x1 average pool with stride s to subsample: both are fast wasm kernels (wasm's
 * StridedSlice and slices of rank > 4 are slow generic loops).
 */
class Taps {
  constructor(
    private readonly xPad: tf.Tensor4D,
    private readonly info: tf.backend_util.Conv2DInfo,
  ) {}

  at(i: number, j: number): tf.Tensor4D {
    const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = this.info;
    const [n, h, w, c] = this.xPad.shape;
    if (i === 0 && j === 0 && sh === 1 && sw === 1 && oh === h && ow === w) return this.xPad;
    const part = tf.slice(this.xPad, [0, i, j, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, c]);
    return sh === 1 && sw === 1 ? part : tf.avgPool(part, 1, [sh, sw], 'valid');
  }
}

function padded(x: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const p = info.padInfo;
  return p.top || p.bottom || p.left || p.right ? tf.pad(x, [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]]) : x;
}

function conv2dBackpropFilter({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const a = attrs ?? {};
  const filterShape = a.filterShape as [number, number, number, number];
  return asKernelOutput(backend as KernelBackend, () => {
    const x = tensorOf(inputs.x!, backend) as tf.Tensor4D;
    const dy = tensorOf(inputs.dy!, backend) as tf.Tensor4D;
    const info = padInfo(x.shape, filterShape, a, false);
    const [kh, kw, ci, co] = filterShape;
    const dy2 = tf.reshape(dy, [-1, co]);
    const taps = new Taps(padded(x, info), info);
    const parts: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) parts.push(tf.matMul(tf.reshape(taps.at(i, j), [-1, ci]), dy2, true, false));
    return tf.reshape(tf.stack(parts), [kh, kw, ci, co]);
  });
}

function depthwiseBackpropFilter({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const a = attrs ?? {};
  const filterShape = a.filterShape as [number, number, number, number];
  if (filterShape[3] !== 1) throw new Error(`wasm DepthwiseConv2dNativeBackpropFilter supports channel multiplier 1, got ${filterShape[3]}`);
  return asKernelOutput(backend as KernelBackend, () => {
    const x = tensorOf(inputs.x!, backend) as tf.Tensor4D;
    const dy = tensorOf(inputs.dy!, backend) as tf.Tensor4D;
    const info = padInfo(x.shape, filterShape, a, true);
    const [kh, kw, c] = filterShape;
    const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
    const [n] = x.shape;
    // dW[i, j, c] = sum over n, h, w of x_pad[n, i + s*h, j + s*w, c] * dy[n, h, w, c]: a depthwise convolution of
    // the padded input (batch folded into channels) with dy as an (oh x ow) filter dilated by the stride.
    const xp = padded(x, info);
    const needH = (oh - 1) * sh + kh;
    const needW = (ow - 1) * sw + kw;
    const xc = tf.slice(xp, [0, 0, 0, 0], [n, Math.min(needH, xp.shape[1]), Math.min(needW, xp.shape[2]), c]);
    const xg = tf.pad(xc, [[0, 0], [0, needH - xc.shape[1]], [0, needW - xc.shape[2]], [0, 0]]);
    const xT = tf.reshape(tf.transpose(xg, [1, 2, 0, 3]), [1, needH, needW, n * c]) as tf.Tensor4D;
    const k = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [oh, ow, n * c, 1]) as tf.Tensor4D;
    const out = tf.depthwiseConv2d(xT, k, 1, 'valid', 'NHWC', [sh, sw]);
    return tf.reshape(tf.sum(tf.reshape(out, [kh, kw, n, c]), 2), [kh, kw, c, 1]);
  });
}

function depthwiseBackpropInput({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const a = attrs ?? {};
  const inputShape = a.inputShape as [number, number, number, number];
  return asKernelOutput(backend as KernelBackend, () => {
    const dy = tensorOf(inputs.dy!, backend) as tf.Tensor4D;
    const filter = tensorOf(inputs.filter!, backend) as tf.Tensor4D;
    const [kh, kw, c, m] = filter.shape;
    if (m !== 1) throw new Error(`wasm DepthwiseConv2dNativeBackpropInput supports channel multiplier 1, got ${m}`);
    const info = padInfo(inputShape, filter.shape, a, true);
    const { strideHeight: sh, strideWidth: sw } = info;
    const [n, oh, ow] = dy.shape;
    // Spread dy onto the stride grid: [N, (oh-1)*sh+1, (ow-1)*sw+1, C] with zeros between samples.
    let d: tf.Tensor4D = dy;
    if (sh > 1 || sw > 1) {
      const spread = tf.pad(tf.reshape(dy, [n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
      d = tf.slice(tf.reshape(spread, [n, oh * sh, ow * sw, c]), [0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, c]) as tf.Tensor4D;
    }
    // Full correlation with the flipped kernel gives the gradient over the padded input, rows [0, (oh-1)*sh + kh).
    const flipped = tf.reverse(filter, [0, 1]) as tf.Tensor4D;
    const full = tf.depthwiseConv2d(tf.pad(d, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]), flipped, 1, 'valid');
    const [, H, W] = inputShape;
    const p = info.padInfo;
    const needH = p.top + H;
    const needW = p.left + W;
    const grown = tf.pad(full, [[0, 0], [0, Math.max(0, needH - full.shape[1])], [0, Math.max(0, needW - full.shape[2])], [0, 0]]);
    return tf.slice(grown, [0, p.top, p.left, 0], [n, H, W, c]);
  });
}

let registered = false;

/** Registers the missing gradient kernels for the wasm backend (once per process). */
export function registerWasmGradients(): void {
  if (registered) return;
  const have = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
  const impls: Record<(typeof NAMES)[number], tf.KernelFunc> = {
    Conv2DBackpropFilter: conv2dBackpropFilter as unknown as tf.KernelFunc,
    DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter as unknown as tf.KernelFunc,
    DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput as unknown as tf.KernelFunc,
  };
  for (const name of NAMES) if (!have.has(name)) tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: impls[name] });
  registered = true;
}
