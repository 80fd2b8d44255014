/**
 * Keras EfficientNet (keras.applications.EfficientNetB0..B7) weights to canonical (timm) names and PyTorch layouts.
 * This is the naming; reading the .h5 files is the zoo's (readKerasH5, which needs an HDF5 library).
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
import { BLOCK_LAYOUTS, blockLayout, type BlockOp, SE_CONVS } from '../block-layouts.js';
import { InvalidSpecError } from '../errors.js';
import type { EfficientNetSpec } from '../spec.js';
import { float32Tensor, type Tensor, type TensorMap, toFloat32 } from '../tensor.js';

/** Layers that carry weights but are input preprocessing, not network parameters. */
const PREPROCESSING_LAYERS = /^(normalization|rescaling)(_\d+)?$/;

type Kind = 'conv' | 'depthwise' | 'bn' | 'dense';

/** Keras's layer suffix for each part of a block, by what the part does (Keras builds only ds and ir blocks). */
const KERAS_PART_NAMES: Partial<Record<BlockOp, { conv: string; bn: string }>> = {
  expand: { conv: 'expand_conv', bn: 'expand_bn' },
  depthwise: { conv: 'dwconv', bn: 'bn' },
  project: { conv: 'project_conv', bn: 'project_bn' },
};

/** Keras layer suffix -> [canonical module, kind] for a block, from core's one table of block layouts. */
function blockTargets(block: EfficientNetSpec['stages'][number]['block']): Record<string, [string, Kind]> {
  const out: Record<string, [string, Kind]> = { se_reduce: [SE_CONVS.reduce, 'conv'], se_expand: [SE_CONVS.expand, 'conv'] };
  for (const part of BLOCK_LAYOUTS[blockLayout(block)]) {
    if (part === 'se') continue;
    const names = KERAS_PART_NAMES[part.op];
    if (!names) continue;
    const kind: Kind = part.op === 'depthwise' ? 'depthwise' : 'conv';
    out[names.conv] = [part.conv, kind];
    out[names.bn] = [part.bn, 'bn'];
  }
  return out;
}

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
  const part = blockTargets(st.block)[m[3]!];
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

