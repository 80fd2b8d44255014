/**
 * Keras EfficientNet (keras.applications.EfficientNetB0..B7) weights to canonical (timm) names and PyTorch layouts.
 *
 * Keras stores one HDF5 group per layer, `[model_weights/]<layer>/<layer>/<var>:0` (the layer group's `weight_names`
 * attribute lists the datasets; the root's `layer_names` lists the layers). Layers are named per stage and repeat:
 * `block{stage+1}{a,b,...}_{expand_conv,expand_bn,dwconv,bn,se_reduce,se_expand,project_conv,project_bn}` plus
 * `stem_conv`, `stem_bn`, `top_conv`, `top_bn`, `predictions`. Layouts: Conv2D kernel HWIO, DepthwiseConv2D kernel
 * [H, W, C, 1], Dense kernel [in, out]; BatchNormalization gamma/beta/moving_mean/moving_variance.
 *
 * Keras also builds its input scaling into the model: Rescaling(1/255), a Normalization layer (weights mean,
 * variance, count) and, for ImageNet weights, Rescaling(1/sqrt(std)). These are not parameters of an effnet graph,
 * whose input is already normalized; the converter drops them and reports the Normalization statistics in its notes.
 */
import { float32Tensor, InvalidSpecError, type EfficientNetSpec, type Tensor, type TensorMap, TensorFileError, toFloat32 } from '@effnet/core';

/** Layers that carry weights but are input preprocessing, not network parameters. */
const PREPROCESSING_LAYERS = /^(normalization|rescaling)(_\d+)?$/;

type Kind = 'conv' | 'depthwise' | 'bn' | 'dense';

/** Keras block part -> [canonical module, kind], for blocks without expansion (timm DepthwiseSeparable) and with it (InvertedResidual). */
const BLOCK_PARTS: Record<'ds' | 'ir', Record<string, [string, Kind]>> = {
  ds: {
    dwconv: ['conv_dw', 'depthwise'],
    bn: ['bn1', 'bn'],
    se_reduce: ['se.conv_reduce', 'conv'],
    se_expand: ['se.conv_expand', 'conv'],
    project_conv: ['conv_pw', 'conv'],
    project_bn: ['bn2', 'bn'],
  },
  ir: {
    expand_conv: ['conv_pw', 'conv'],
    expand_bn: ['bn1', 'bn'],
    dwconv: ['conv_dw', 'depthwise'],
    bn: ['bn2', 'bn'],
    se_reduce: ['se.conv_reduce', 'conv'],
    se_expand: ['se.conv_expand', 'conv'],
    project_conv: ['conv_pwl', 'conv'],
    project_bn: ['bn3', 'bn'],
  },
};

const TOP_LAYERS: Record<string, [string, Kind]> = {
  stem_conv: ['conv_stem', 'conv'],
  stem_bn: ['bn1', 'bn'],
  top_conv: ['conv_head', 'conv'],
  top_bn: ['bn2', 'bn'],
  predictions: ['classifier', 'dense'],
};

const BN_VARS: Record<string, string> = { gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' };

/** Permutes a dense float32 tensor's axes: out.shape[i] = in.shape[perm[i]]. */
export function permute(t: Tensor, perm: readonly number[]): Tensor {
  const src = toFloat32(t);
  const shape = t.shape;
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const stridesForOut = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(src.length);
  const idx = new Array<number>(rank).fill(0);
  let srcOff = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = src[srcOff]!;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      srcOff += stridesForOut[d]!;
      if (idx[d]! < outShape[d]!) break;
      srcOff -= stridesForOut[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return float32Tensor(outShape, out);
}

/** The canonical module and kind of a Keras layer name, or undefined for a name this converter does not know. */
export function kerasLayerTarget(spec: EfficientNetSpec, layer: string): [string, Kind] | undefined {
  const top = TOP_LAYERS[layer];
  if (top) return top;
  const m = /^block(\d+)([a-z])_([a-z_]+)$/.exec(layer);
  if (!m) return undefined;
  const stage = Number(m[1]) - 1;
  const index = m[2]!.charCodeAt(0) - 97;
  const st = spec.stages[stage];
  if (!st || index >= st.repeats) return undefined;
  const part = BLOCK_PARTS[st.block.expand === 1 ? 'ds' : 'ir'][m[3]!];
  return part ? [`blocks.${stage}.${index}.${part[0]}`, part[1]] : undefined;
}

function convertVar(kind: Kind, v: string, t: Tensor): [string, Tensor] | undefined {
  switch (kind) {
    case 'conv':
      if (v === 'kernel' && t.shape.length === 4) return ['weight', permute(t, [3, 2, 0, 1])]; // HWIO -> OIHW
      if (v === 'bias') return ['bias', t];
      return undefined;
    case 'depthwise':
      if (v === 'depthwise_kernel' && t.shape.length === 4) return ['weight', permute(t, [2, 3, 0, 1])]; // H W C M -> C M H W
      if (v === 'bias') return ['bias', t];
      return undefined;
    case 'dense':
      if (v === 'kernel' && t.shape.length === 2) return ['weight', permute(t, [1, 0])]; // [in, out] -> [out, in]
      if (v === 'bias') return ['bias', t];
      return undefined;
    case 'bn':
      return BN_VARS[v] ? [BN_VARS[v], t] : undefined;
  }
}

export interface KerasConversion {
  tensors: TensorMap;
  /** What was dropped or noticed (preprocessing layers and their statistics). */
  notes: string[];
}

/**
 * Renames and transposes Keras EfficientNet V1 weights (keys `<layer>/<var>`, as readKerasH5 returns them) to canonical
 * names and PyTorch layouts. Names it does not know are kept as they are, so that binding reports them by name.
 */
export function fromKeras(spec: EfficientNetSpec, tensors: TensorMap): KerasConversion {
  if (!spec.stages.every((s) => s.block.type === 'mbconv'))
    throw new InvalidSpecError('arch', spec.name, "an EfficientNet V1 variant (B0-B7, L2): the Keras converter reads keras.applications.EfficientNetB*; EfficientNetV2's Keras layout is not supported");
  const out: TensorMap = new Map();
  const notes: string[] = [];
  const dropped = new Map<string, string[]>();
  for (const [key, t] of tensors) {
    const slash = key.lastIndexOf('/');
    const layer = slash > 0 ? key.slice(0, slash) : key;
    const v = slash > 0 ? key.slice(slash + 1) : '';
    if (PREPROCESSING_LAYERS.test(layer)) {
      const values = toFloat32(t);
      const shown = values.length <= 4 ? ` = [${Array.from(values, (x) => +x.toPrecision(6)).join(', ')}]` : '';
      dropped.set(layer, [...(dropped.get(layer) ?? []), `${v} [${t.shape.join(', ')}]${shown}`]);
      continue;
    }
    const target = kerasLayerTarget(spec, layer);
    const converted = target ? convertVar(target[1], v, t) : undefined;
    if (target && converted) out.set(`${target[0]}.${converted[0]}`, converted[1]);
    else out.set(key, t);
  }
  for (const [layer, vars] of dropped) notes.push(`dropped Keras input-preprocessing layer "${layer}" (${vars.join('; ')}); effnet graphs take normalized input`);
  return { tensors: out, notes };
}

type H5Module = typeof import('h5wasm/node');
let h5Promise: Promise<H5Module['default']> | undefined;

async function h5wasm(): Promise<H5Module['default']> {
  h5Promise ??= import('h5wasm/node').then(async (m) => {
    const h5 = ((m as { default?: H5Module['default'] }).default ?? m) as H5Module['default'];
    await h5.ready;
    return h5;
  });
  return h5Promise;
}

function decodeNames(v: unknown): string[] | undefined {
  const dec = new TextDecoder();
  const one = (x: unknown) => (typeof x === 'string' ? x : x instanceof Uint8Array ? dec.decode(x).replace(/\0+$/, '') : undefined);
  if (Array.isArray(v)) {
    const names = v.map(one);
    return names.every((n): n is string => typeof n === 'string') ? names : undefined;
  }
  const s = one(v);
  return s === undefined ? undefined : [s];
}

/** HDF5's error stack in one phrase ("unable to synchronously open file"). */
function hdf5Reason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const first = /#000: .*?\(\): (.*)/.exec(msg)?.[1];
  const minors = [...msg.matchAll(/minor: (.*)/g)].map((m) => m[1]!.trim());
  return [first, minors.at(-1)].filter(Boolean).join(': ') || msg.split('\n')[0]!;
}

/** Any numeric dataset value as float32 (Keras' Normalization keeps an int64 `count`). */
function asFloat32(value: unknown): Float32Array | undefined {
  if (value instanceof Float32Array) return value;
  if (typeof value === 'number') return Float32Array.of(value);
  if (typeof value === 'bigint') return Float32Array.of(Number(value));
  if (value instanceof BigInt64Array || value instanceof BigUint64Array) return Float32Array.from(value, (v) => Number(v));
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Float32Array.from(value as unknown as ArrayLike<number>);
  return undefined;
}

/**
 * Reads a Keras HDF5 weights file (`model.save_weights('w.h5')` or `model.save('m.h5')`, Keras 2 layout) into
 * tensors keyed `<layer>/<var>` in Keras layouts, as float32. HDF5's own diagnostics are turned into the error
 * instead of being printed.
 */
export async function readKerasH5(path: string): Promise<TensorMap> {
  const h5 = await h5wasm();
  const module = (await h5.ready) as unknown as { activate_throwing_error_handler?: () => number; deactivate_throwing_error_handler?: () => number };
  module.activate_throwing_error_handler?.();
  let f: InstanceType<typeof h5.File> | undefined;
  try {
    try {
      f = new h5.File(path, 'r');
    } catch (e) {
      throw new TensorFileError(path, `is not a readable HDF5 file (${hdf5Reason(e)}); Keras weights are read from .h5 files saved by Keras 2`);
    }
    const rootKeys = f.keys();
    const root = rootKeys.includes('model_weights') ? f.get('model_weights') : f;
    if (!(root instanceof h5.Group)) throw new TensorFileError(path, '"model_weights" is not a group');
    if (!root.attrs.layer_names && rootKeys.includes('layers') && !rootKeys.includes('model_weights'))
      throw new TensorFileError(path, "looks like a Keras 3 .weights.h5 file (layers/<name>/vars/<i>), which is not supported; save it in Keras 2's h5 layout (model.save_weights('w.h5') with tf.keras / keras 2)");
    const layerNames = decodeNames(root.attrs.layer_names?.value) ?? root.keys();
    const tensors: TensorMap = new Map();
    for (const layer of layerNames) {
      const g = root.get(layer);
      if (!(g instanceof h5.Group)) continue;
      let names = decodeNames(g.attrs.weight_names?.value);
      if (!names) {
        names = [];
        const walk = (grp: InstanceType<typeof h5.Group>, prefix: string) => {
          for (const k of grp.keys()) {
            const c = grp.get(k);
            if (c instanceof h5.Dataset) names!.push(prefix + k);
            else if (c instanceof h5.Group) walk(c, `${prefix}${k}/`);
          }
        };
        walk(g, '');
      }
      for (const wn of names) {
        const ds = g.get(wn);
        if (!(ds instanceof h5.Dataset)) throw new TensorFileError(path, `layer "${layer}" lists weight "${wn}", which is not a dataset`);
        const data = asFloat32(ds.value);
        if (!data) throw new TensorFileError(path, `weight "${layer}/${wn}" has dtype ${JSON.stringify(ds.dtype)}, which is not numeric`);
        const v = wn.slice(wn.lastIndexOf('/') + 1).replace(/:\d+$/, '');
        tensors.set(`${layer}/${v}`, float32Tensor([...(ds.shape ?? [])], data));
      }
    }
    return tensors;
  } catch (e) {
    if (e instanceof TensorFileError) throw e;
    throw new TensorFileError(path, `cannot be read as Keras weights (${hdf5Reason(e)})`);
  } finally {
    f?.close();
    module.deactivate_throwing_error_handler?.();
  }
}
