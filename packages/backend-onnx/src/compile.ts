import {
  assertNever,
  bindWeights,
  EffnetError,
  type Graph,
  type GraphNode,
  inferShapes,
  prepareForInference,
  resolvePads,
  type Shape,
  type TensorMap,
  weightData,
} from '@effnet/core';
import { DataType, encodeModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-proto.js';
import { floatBytes, OnnxWriter } from './onnx-writer.js';
import { calibrationTensors, insertQdq, type Int8Options } from './quantize.js';

export const DEFAULT_OPSET = 17;
/** The opsets we emit and onnxruntime-node 1.30 runs. */
export const SUPPORTED_OPSETS = [13, 14, 15, 16, 17, 18, 19, 20, 21] as const;
/** Initializer bytes past which `externalData: 'auto'` moves weights out of the protobuf (2 GB hard limit). */
export const EXTERNAL_DATA_THRESHOLD = 1.8 * 1024 ** 3;

export interface CompileOptions {
  /** ONNX opset, default 17. */
  opset?: number;
  /** Fold BatchNorm into the conv before it (default true). */
  foldBatchNorm?: boolean;
  /** Remove dropout, drop-path and identities (default true). */
  removeNoOps?: boolean;
  /** Store weights and compute in float16; inputs and outputs stay float32 (Cast at the edges). */
  fp16?: boolean;
  /** Weights in a separate file: true, false, or 'auto' (default: only past 2 GB). */
  externalData?: boolean | 'auto';
  /** File name of the external data, relative to the model file. Default 'model.onnx.data'. */
  externalDataLocation?: string;
  /** Extra metadata_props (e.g. preprocessing as JSON). */
  metadata?: Record<string, string>;
  /** Static int8 quantization (QDQ) with calibrated activation ranges (see quantize.ts and calibrateInt8). */
  int8?: Int8Options;
  /** Also output every activation int8 quantization needs a range for (the calibration model). */
  calibrationOutputs?: boolean;
  /** Model doc string. */
  docString?: string;
  /** Accept NaN and infinities in the weights (default false). */
  allowNonFinite?: boolean;
  /**
   * Appends nodes after the compiled graph (post-processing in the model): called with the compiled graph's input and
   * outputs (float32), it returns the nodes, their initializers and the model's outputs. Generic: the compiler only
   * checks that the new names do not clash and that every output is produced.
   */
  extend?: (graph: OnnxGraphInfo) => OnnxGraphExtension;
}

/** What an `extend` hook sees of the compiled graph. */
export interface OnnxGraphInfo {
  opset: number;
  input: OnnxValueInfo;
  /** The graph's outputs (float32, batch axis "batch"). */
  outputs: OnnxValueInfo[];
  /** Every tensor name in use (input, node outputs, initializers): new names must avoid them. */
  names: ReadonlySet<string>;
}

/** Nodes an `extend` hook appends, reading the graph's outputs. */
export interface OnnxGraphExtension {
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  /** The model's outputs: they replace the graph's own unless keepGraphOutputs. */
  outputs: OnnxValueInfo[];
  keepGraphOutputs?: boolean;
  /** Extra metadata_props. */
  metadata?: Record<string, string>;
  /** Appended to the model's doc string. */
  docString?: string;
}

export interface CompiledOnnx {
  /** ModelProto bytes. */
  model: Uint8Array;
  /** Present when weights live outside the model: write `bytes` next to the model file as `location`. */
  externalData?: { location: string; bytes: Uint8Array };
  inputName: string;
  outputNames: string[];
  opset: number;
}

export class OnnxCompileError extends EffnetError {
  override name = 'OnnxCompileError';
}

const IR_VERSION: Record<number, number> = { 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

/** Emits ONNX nodes for graph nodes, one kind at a time. */
export class Emitter extends OnnxWriter {
  private readonly emittedWeights = new Set<string>();

  constructor(
    readonly opset: number,
    fp16: boolean,
    readonly weights: TensorMap,
    readonly shapes: Map<string, Shape>,
    /** Parameters as graph inputs named as the parameters (training), rather than initializers holding `weights`. */
    readonly paramsAsInputs = false,
  ) {
    super(fp16 ? DataType.FLOAT16 : DataType.FLOAT, fp16);
  }

  /**
   * A weight from the graph: the graph input of that name (training), or an initializer converted and stored once
   * however many nodes read it (shared parameters).
   */
  weight(name: string): string {
    if (this.paramsAsInputs || this.emittedWeights.has(name)) return name;
    this.emittedWeights.add(name);
    const t = this.weights.get(name)!;
    this.initializers.push({ name, dataType: this.floatType, dims: [...t.shape], raw: floatBytes(weightData(this.weights, name), this.fp16) });
    return name;
  }

  /** Static [top, left, bottom, right] pads when the input size is known, else null (use auto_pad). */
  staticPads(node: Extract<GraphNode, { kind: 'conv2d' | 'maxPool' }>, input: string): number[] | null {
    const s = this.shapes.get(input)!;
    const h = s[2];
    const w = s[3];
    if (node.padding.mode === 'same' && (h === null || w === null || h === undefined || w === undefined)) return null;
    const dilation: [number, number] = node.kind === 'conv2d' ? node.dilation : [1, 1];
    return resolvePads(node.padding, (h as number) ?? 0, (w as number) ?? 0, node.kernel, node.stride, dilation);
  }

  emit(node: GraphNode, x: string[], out: string): void {
    const doc = `effnet ${node.kind}`;
    switch (node.kind) {
      case 'conv2d': {
        const pads = this.staticPads(node, node.inputs[0]!);
        const inputs = [x[0]!, this.weight(node.params.weight)];
        if (node.params.bias) inputs.push(this.weight(node.params.bias));
        this.op('Conv', node.name, inputs, [out], {
          kernel_shape: node.kernel,
          strides: node.stride,
          dilations: node.dilation,
          group: node.groups,
          // TF SAME on a dynamic size: SAME_UPPER puts the odd pixel at the end, as TensorFlow does.
          ...(pads ? { pads } : { auto_pad: 'SAME_UPPER' }),
        }, doc);
        return;
      }
      case 'convTranspose': {
        const inputs = [x[0]!, this.weight(node.params.weight)];
        if (node.params.bias) inputs.push(this.weight(node.params.bias));
        this.op('ConvTranspose', node.name, inputs, [out], {
          kernel_shape: node.kernel,
          strides: node.stride,
          group: node.groups,
          pads: node.pads,
          output_padding: node.outputPadding,
        }, doc);
        return;
      }
      case 'batchNorm': {
        const p = node.params;
        this.op('BatchNormalization', node.name, [x[0]!, this.weight(p.weight), this.weight(p.bias), this.weight(p.runningMean), this.weight(p.runningVar)], [out], { epsilon: { float: node.eps } }, doc);
        return;
      }
      case 'groupNorm': {
        // PyTorch's export: [N, G, -1] through InstanceNormalization (unit scale, zero shift), back to [N, C, H, W],
        // then the per-channel scale and shift (opset 18's GroupNormalization scales per group, 21's per channel).
        const G = node.groups;
        const grouped = `${out}/grouped`;
        this.op('Reshape', `${node.name}/grouped`, [x[0]!, this.int64Const([0, G, -1])], [grouped]);
        const normed = `${out}/normed`;
        this.op('InstanceNormalization', `${node.name}/normed`, [grouped, this.floatConst(new Array(G).fill(1), [G]), this.floatConst(new Array(G).fill(0), [G])], [normed], { epsilon: { float: node.eps } }, doc);
        const back = `${out}/ungrouped`;
        this.op('Shape', `${node.name}/shape`, [x[0]!], [`${out}/shape`]);
        this.op('Reshape', `${node.name}/ungrouped`, [normed, `${out}/shape`], [back]);
        const perChannel = (p: string) => {
          const t = `${out}/${p.split('.').pop()}_c11`;
          this.op('Reshape', t, [this.weight(p), this.int64Const([node.channels, 1, 1])], [t]);
          return t;
        };
        const scaled = `${out}/scaled`;
        this.op('Mul', `${node.name}/scale`, [back, perChannel(node.params.weight)], [scaled]);
        this.op('Add', node.name, [scaled, perChannel(node.params.bias)], [out]);
        return;
      }
      case 'activation':
        this.activation(node.fn, node.name, x[0]!, out);
        return;
      case 'softmax':
        this.op('Softmax', node.name, [x[0]!], [out], { axis: node.axis }, doc);
        return;
      case 'add':
        this.op(x.length === 2 ? 'Add' : 'Sum', node.name, x, [out], undefined, doc);
        return;
      case 'mul':
        this.op('Mul', node.name, x, [out], undefined, doc);
        return;
      case 'globalAvgPool':
        if (node.keepDims) this.op('GlobalAveragePool', node.name, [x[0]!], [out], undefined, doc);
        else {
          this.op('GlobalAveragePool', `${node.name}/pool`, [x[0]!], [`${out}/pool`], undefined, doc);
          this.op('Flatten', node.name, [`${out}/pool`], [out], { axis: 1 });
        }
        return;
      case 'flatten':
        this.op('Flatten', node.name, [x[0]!], [out], { axis: 1 }, doc);
        return;
      case 'dense': {
        const inputs = [x[0]!, this.weight(node.params.weight)];
        if (node.params.bias) inputs.push(this.weight(node.params.bias));
        this.op('Gemm', node.name, inputs, [out], { transB: 1 }, doc);
        return;
      }
      case 'dropout':
      case 'dropPath':
        this.op('Identity', node.name, [x[0]!], [out], undefined, `${doc} (identity at inference)`);
        return;
      case 'maxPool': {
        const pads = this.staticPads(node, node.inputs[0]!);
        this.op('MaxPool', node.name, [x[0]!], [out], { kernel_shape: node.kernel, strides: node.stride, ...(pads ? { pads } : { auto_pad: 'SAME_UPPER' }) }, doc);
        return;
      }
      case 'resize': {
        const attrs: OnnxNode['attributes'] =
          node.mode === 'nearest'
            ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
            : { mode: 'linear', coordinate_transformation_mode: node.alignCorners ? 'align_corners' : 'pytorch_half_pixel' };
        if (x.length === 1) {
          const s = node.scale!;
          this.op('Resize', node.name, [x[0]!, '', this.float32Const([1, 1, s, s])], [out], attrs, doc);
        } else {
          const shapeX = `${out}/shape_x`;
          const shapeLike = `${out}/shape_like`;
          this.op('Shape', `${node.name}/shape_x`, [x[0]!], [shapeX]);
          this.op('Shape', `${node.name}/shape_like`, [x[1]!], [shapeLike]);
          this.op('Slice', `${node.name}/nc`, [shapeX, this.int64Const([0]), this.int64Const([2])], [`${out}/nc`]);
          this.op('Slice', `${node.name}/hw`, [shapeLike, this.int64Const([2]), this.int64Const([4])], [`${out}/hw`]);
          this.op('Concat', `${node.name}/sizes`, [`${out}/nc`, `${out}/hw`], [`${out}/sizes`], { axis: 0 });
          this.op('Resize', node.name, [x[0]!, '', '', `${out}/sizes`], [out], attrs, doc);
        }
        return;
      }
      case 'concat':
        this.op('Concat', node.name, x, [out], { axis: node.axis }, doc);
        return;
      case 'weightedSum': {
        // The fusion weights are known at compile time: normalise them once and emit constant scalars.
        const raw = Array.from(weightData(this.weights, node.params.weight));
        let w: number[];
        if (node.normalization === 'fast') {
          const r = raw.map((v) => Math.max(v, 0));
          const sum = r.reduce((a, b) => a + b, 0) + node.epsilon;
          w = r.map((v) => v / sum);
        } else {
          const m = Math.max(...raw);
          const e = raw.map((v) => Math.exp(v - m));
          const sum = e.reduce((a, b) => a + b, 0);
          w = e.map((v) => v / sum);
        }
        const terms = x.map((xi, i) => {
          const t = `${out}/term${i}`;
          this.op('Mul', `${node.name}/term${i}`, [xi, this.floatConst([w[i]!])], [t]);
          return t;
        });
        this.op('Sum', node.name, terms, [out], undefined, doc);
        return;
      }
      default:
        assertNever(node, 'node kind');
    }
  }

  private activation(fn: Extract<GraphNode, { kind: 'activation' }>['fn'], name: string, x: string, out: string): void {
    const doc = `effnet activation ${fn}`;
    switch (fn) {
      case 'identity':
        return this.op('Identity', name, [x], [out], undefined, doc);
      case 'relu':
        return this.op('Relu', name, [x], [out], undefined, doc);
      case 'relu6':
        return this.op('Clip', name, [x, this.floatConst([0]), this.floatConst([6])], [out], undefined, doc);
      case 'silu':
        this.op('Sigmoid', `${name}/sigmoid`, [x], [`${out}/sigmoid`]);
        return this.op('Mul', name, [x, `${out}/sigmoid`], [out], undefined, doc);
      case 'sigmoid':
        return this.op('Sigmoid', name, [x], [out], undefined, doc);
      case 'tanh':
        return this.op('Tanh', name, [x], [out], undefined, doc);
      case 'hardSigmoid':
        return this.op('HardSigmoid', name, [x], [out], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }, doc);
      case 'hardSwish':
        return this.op('HardSwish', name, [x], [out], undefined, doc);
      case 'gelu':
        if (this.opset >= 20) return this.op('Gelu', name, [x], [out], undefined, doc);
        // 0.5 * x * (1 + erf(x / sqrt(2)))
        this.op('Div', `${name}/scaled`, [x, this.floatConst([Math.SQRT2])], [`${out}/scaled`]);
        this.op('Erf', `${name}/erf`, [`${out}/scaled`], [`${out}/erf`]);
        this.op('Add', `${name}/one_plus`, [`${out}/erf`, this.floatConst([1])], [`${out}/one_plus`]);
        this.op('Mul', `${name}/x_times`, [x, `${out}/one_plus`], [`${out}/x_times`]);
        return this.op('Mul', name, [`${out}/x_times`, this.floatConst([0.5])], [out], undefined, doc);
      default:
        assertNever(fn, 'activation');
    }
  }
}

const dimsOf = (s: Shape, batch: string): (number | string)[] => s.map((d, i) => (i === 0 ? batch : d === null ? ['batch', 'channels', 'height', 'width'][i]! : d));

/**
 * Compiles a graph and its weights to an ONNX model: dynamic batch axis, named inputs and outputs, metadata_props.
 * Weights are checked against the graph first (every missing/unexpected/mis-shaped tensor is reported at once).
 */
export function compileToOnnx(graph: Graph, weights: TensorMap, options: CompileOptions = {}): CompiledOnnx {
  const opset = options.opset ?? DEFAULT_OPSET;
  if (!(SUPPORTED_OPSETS as readonly number[]).includes(opset))
    throw new OnnxCompileError(`opset ${opset} is not supported; use one of ${SUPPORTED_OPSETS.join(', ')} (default ${DEFAULT_OPSET})`);
  const fp16 = options.fp16 ?? false;
  const bound = bindWeights(graph, weights, { allowNonFinite: options.allowNonFinite });
  const prepared = prepareForInference(graph, bound, { foldBatchNorm: options.foldBatchNorm ?? true, removeNoOps: options.removeNoOps ?? true });
  const g = prepared.graph;
  const shapes = inferShapes(g);
  const e = new Emitter(opset, fp16, prepared.weights, shapes);

  const input = g.inputs[0]!;
  if (g.inputs.length !== 1) throw new OnnxCompileError(`graph "${g.name}" has ${g.inputs.length} inputs; the ONNX compiler takes one image input`);
  const tensorName = new Map<string, string>();
  if (fp16) {
    e.op('Cast', `${input.name}/to_fp16`, [input.name], [`${input.name}/fp16`], { to: DataType.FLOAT16 });
    tensorName.set(input.name, `${input.name}/fp16`);
  }
  const outputs = new Set(g.outputs);
  for (const node of g.nodes) {
    const out = fp16 && outputs.has(node.name) ? `${node.name}/fp16` : node.name;
    tensorName.set(node.name, out);
    e.emit(node, node.inputs.map((i) => tensorName.get(i) ?? i), out);
  }
  if (fp16) for (const o of g.outputs) e.op('Cast', `${o}/to_fp32`, [tensorName.get(o)!], [o], { to: DataType.FLOAT });
  if (fp16 && (options.int8 || options.calibrationOutputs)) throw new OnnxCompileError('int8 and fp16 exclude each other: int8 quantizes the float32 model');

  const inputs: OnnxValueInfo[] = [{ name: input.name, elemType: DataType.FLOAT, shape: dimsOf(shapes.get(input.name)!, 'batch'), docString: 'float32 NCHW image batch' }];
  let outputsInfo: OnnxValueInfo[] = g.outputs.map((o) => ({ name: o, elemType: DataType.FLOAT, shape: dimsOf(shapes.get(o)!, 'batch') }));
  if (options.calibrationOutputs)
    for (const t of calibrationTensors(e.nodes, g.outputs))
      if (t !== input.name && !g.outputs.includes(t)) {
        const shape = shapes.get(t);
        outputsInfo.push({ name: t, elemType: DataType.FLOAT, ...(shape ? { shape: dimsOf(shape, 'batch') } : {}) });
      }
  if (options.int8) {
    const q = insertQdq(e.nodes, e.initializers, input.name, g.outputs, options.int8);
    e.nodes.splice(0, e.nodes.length, ...q.nodes);
    e.initializers.splice(0, e.initializers.length, ...q.initializers);
  }
  const extension = options.extend ? appendExtension(options.extend, e, inputs[0]!, outputsInfo, opset) : undefined;
  if (extension) outputsInfo = extension.keepGraphOutputs ? [...outputsInfo, ...extension.outputs] : extension.outputs;

  let externalData: CompiledOnnx['externalData'];
  const total = e.initializers.reduce((a, t) => a + (t.raw?.length ?? 0), 0);
  const external = options.externalData === true || ((options.externalData ?? 'auto') === 'auto' && total > EXTERNAL_DATA_THRESHOLD);
  if (external) {
    const location = options.externalDataLocation ?? 'model.onnx.data';
    const big = e.initializers.filter((t) => (t.raw?.length ?? 0) >= 1024);
    const align = (n: number) => Math.ceil(n / 4096) * 4096;
    let size = 0;
    for (const t of big) size = align(size) + t.raw!.length;
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const t of big) {
      offset = align(offset);
      bytes.set(t.raw!, offset);
      t.external = { location, offset, length: t.raw!.length };
      delete t.raw;
      offset += t.external.length;
    }
    externalData = { location, bytes };
  }

  const metadata: Record<string, string> = {
    'effnet.variant': String(g.metadata.variant ?? g.name),
    'effnet.graph_format': g.format,
    ...Object.fromEntries(Object.entries(g.metadata).map(([k, v]) => [`effnet.${k}`, String(v)])),
    'effnet.fp16': String(fp16),
    ...(options.int8 ? { 'effnet.int8': `QDQ, ${options.int8.activations ?? 'uint8'} activations, int8 per-channel weights` } : {}),
    ...(externalData ? { 'effnet.external_data': externalData.location } : {}),
    ...extension?.metadata,
    ...options.metadata,
  };
  const model = encodeModel({
    irVersion: IR_VERSION[opset]!,
    opset,
    producerName: 'effnet',
    producerVersion: '0.1.0',
    docString: options.docString ?? `${g.name} compiled by effnet from its graph IR (NCHW float32 in, ${outputsInfo.map((o) => o.name).join(', ')} out)${extension?.docString ? `. ${extension.docString}` : ''}`,
    graphName: g.name,
    nodes: e.nodes,
    initializers: e.initializers,
    inputs,
    outputs: outputsInfo,
    metadata,
  });
  return { model, ...(externalData ? { externalData } : {}), inputName: input.name, outputNames: outputsInfo.map((o) => o.name), opset };
}

/** Runs an `extend` hook and appends what it returns, after checking its names against the graph's. */
function appendExtension(extend: NonNullable<CompileOptions['extend']>, e: Emitter, input: OnnxValueInfo, outputs: OnnxValueInfo[], opset: number): OnnxGraphExtension {
  const names = new Set<string>([input.name, ...e.initializers.map((t) => t.name), ...e.nodes.flatMap((n) => n.outputs)]);
  const ext = extend({ opset, input, outputs, names });
  const added = new Set<string>();
  for (const name of [...ext.initializers.map((t) => t.name), ...ext.nodes.flatMap((n) => n.outputs)]) {
    if (names.has(name) || added.has(name)) throw new OnnxCompileError(`the extension's tensor "${name}" is already defined; give the appended nodes and initializers names of their own`);
    added.add(name);
  }
  for (const o of ext.outputs) if (!added.has(o.name) && !(ext.keepGraphOutputs && names.has(o.name))) throw new OnnxCompileError(`the extension's output "${o.name}" is produced by none of its nodes`);
  e.nodes.push(...ext.nodes);
  e.initializers.push(...ext.initializers);
  return ext;
}
