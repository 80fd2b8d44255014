/**
 * Keras EfficientNet weights (keras.applications.EfficientNetB0..B7 and EfficientNetV2B0..B3/S/M/L) to canonical
 * (timm) names and PyTorch layouts. This is the naming; reading the .h5 files is the zoo's (readKerasH5, which needs an
 * HDF5 library).
 *
 * Keras stores one HDF5 group per layer, `[model_weights/]<layer>/<layer>/<var>:0` (the layer group's `weight_names`
 * attribute lists the datasets; the root's `layer_names` lists the layers). Layers are named per stage and repeat,
 * `block{stage+1}{a,b,...}_<part>`, plus `stem_conv`, `stem_bn`, `top_conv`, `top_bn`, `predictions`. The parts
 * (keras/src/applications/efficientnet.py and efficientnet_v2.py):
 * - V1 MBConv: `expand_conv`, `expand_bn` (when it expands), `dwconv`, `bn`, `se_reduce`, `se_expand`, `project_conv`,
 *   `project_bn`.
 * - V2 MBConv: the same, but the depthwise conv is `dwconv2`.
 * - V2 FusedMBConv: the kxk conv is `expand_conv`/`expand_bn` when the block expands (then a 1x1 `project_conv`/
 *   `project_bn`), and `project_conv`/`project_bn` when it is the block's only conv.
 * Layouts: Conv2D kernel HWIO, DepthwiseConv2D kernel [H, W, C, 1], Dense kernel [in, out]; BatchNormalization
 * gamma/beta/moving_mean/moving_variance (epsilon 1e-3, Keras' default, in both generations; padding "same").
 *
 * Keras also builds its input scaling into the model: V1 Rescaling(1/255), a Normalization layer (weights mean,
 * variance, count) and, for ImageNet weights, Rescaling(1/sqrt(std)); V2-B0..B3 Rescaling(1/255) and Normalization
 * (ImageNet mean and variance); V2-S/M/L Rescaling(1/128, offset -1). These are not parameters of an effnet graph,
 * whose input is already normalized; the converter drops them and reports the Normalization statistics in its notes.
 */
import { type BlockLayout, blockLayout, type BlockOp, blockParts, SE_CONVS } from '../block-layouts.js';
import { InvalidSpecError } from '../errors.js';
import type { EfficientNetSpec } from '../spec.js';
import { float32Tensor, type Tensor, type TensorMap, toFloat32 } from '../tensor.js';

/** Layers that carry weights but are input preprocessing, not network parameters. */
const PREPROCESSING_LAYERS = /^(normalization|rescaling)(_\d+)?$/;

type Kind = 'conv' | 'depthwise' | 'bn' | 'dense';

/** Which Keras application made the file: keras.applications.EfficientNetB* (v1) or EfficientNetV2* (v2). */
export type KerasGeneration = 'v1' | 'v2';

/** The Keras generation whose layer names fit a spec: V2 builds fused blocks, V1 never does. */
export function kerasGeneration(spec: EfficientNetSpec): KerasGeneration {
  return spec.stages.some((s) => s.block.type === 'fused') ? 'v2' : 'v1';
}

interface KerasPart {
  conv: string;
  bn: string;
}
const EXPAND: KerasPart = { conv: 'expand_conv', bn: 'expand_bn' };
const PROJECT: KerasPart = { conv: 'project_conv', bn: 'project_bn' };

/**
 * Keras' layer suffix for each conv part of each block layout it builds, per generation (the parts themselves come
 * from core's one table of block layouts). A V2 fused conv is named for what it does in Keras' FusedMBConvBlock: the
 * expansion when the block expands, the projection when it is the only conv.
 */
const KERAS_PART_NAMES: Record<KerasGeneration, Partial<Record<BlockLayout, Partial<Record<BlockOp, KerasPart>>>>> = {
  v1: {
    ds: { depthwise: { conv: 'dwconv', bn: 'bn' }, project: PROJECT },
    ir: { expand: EXPAND, depthwise: { conv: 'dwconv', bn: 'bn' }, project: PROJECT },
  },
  v2: {
    ir: { expand: EXPAND, depthwise: { conv: 'dwconv2', bn: 'bn' }, project: PROJECT },
    er: { fused: EXPAND, project: PROJECT },
    cn: { fused: PROJECT },
  },
};

/** Keras layer suffix -> [canonical module, kind] for each part a block has, from core's one table of block layouts. */
function blockTargets(generation: KerasGeneration, block: EfficientNetSpec['stages'][number]['block']): [string, [string, Kind]][] {
  const layout = blockLayout(block);
  const names = KERAS_PART_NAMES[generation][layout];
  if (!names) throw new InvalidSpecError('block', layout, `a block Keras' EfficientNet${generation === 'v2' ? 'V2' : ''} builds (${Object.keys(KERAS_PART_NAMES[generation]).join(', ')})`);
  const out: [string, [string, Kind]][] = [];
  for (const part of blockParts(block)) {
    if (part === 'se') {
      out.push(['se_reduce', [SE_CONVS.reduce, 'conv']], ['se_expand', [SE_CONVS.expand, 'conv']]);
      continue;
    }
    const n = names[part.op];
    if (!n) throw new InvalidSpecError('block part', `${layout}.${part.op}`, 'a part with a Keras layer name');
    out.push([n.conv, [part.conv, part.op === 'depthwise' ? 'depthwise' : 'conv']], [n.bn, [part.bn, 'bn']]);
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

/**
 * Keras layer name -> [canonical module, kind] for every layer of a spec that carries weights, named as Keras' builder
 * names them (`block{stage + 1}{chr(97 + repeat)}_<part>`). Throws for a spec with a block Keras never builds.
 */
export function kerasLayerTargets(spec: EfficientNetSpec): Map<string, [string, Kind]> {
  const generation = kerasGeneration(spec);
  const m = new Map<string, [string, Kind]>(Object.entries(TOP_LAYERS));
  spec.stages.forEach((st, s) => {
    const parts = blockTargets(generation, st.block);
    for (let j = 0; j < st.repeats; j++)
      for (const [suffix, [module, kind]] of parts) m.set(`block${s + 1}${String.fromCharCode(97 + j)}_${suffix}`, [`blocks.${s}.${j}.${module}`, kind]);
  });
  return m;
}

/** The canonical module and kind of a Keras layer name, or undefined for a name this converter does not know. */
export function kerasLayerTarget(spec: EfficientNetSpec, layer: string): [string, Kind] | undefined {
  return kerasLayerTargets(spec).get(layer);
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
 * Renames and transposes Keras EfficientNet weights (V1 or V2, as the spec says; keys `<layer>/<var>`, as readKerasH5
 * returns them) to canonical names and PyTorch layouts. Names it does not know are kept as they are, so that binding
 * reports them by name.
 */
export function fromKeras(spec: EfficientNetSpec, tensors: TensorMap): KerasConversion {
  const targets = kerasLayerTargets(spec);
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
    const target = targets.get(layer);
    const converted = target ? convertVar(target[1], v, t) : undefined;
    if (target && converted) out.set(`${target[0]}.${converted[0]}`, converted[1]);
    else out.set(key, t);
  }
  for (const [layer, vars] of dropped) notes.push(`dropped Keras input-preprocessing layer "${layer}" (${vars.join('; ')}); effnet graphs take normalized input`);
  return { tensors: out, notes };
}

