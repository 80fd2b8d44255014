import type { Shape } from '@effnet/core';
import { Emitter } from '../compile.js';
import type { OnnxNode } from '../onnx-proto.js';

/** The opset training graphs are written for (ReduceMean and friends still take `axes` as an attribute). */
export const TRAINING_OPSET = 17;

type Attrs = OnnxNode['attributes'];

/**
 * The inference emitter with parameters as graph inputs, plus small helpers that name their outputs: the forward
 * and backward rules of the training compiler are written with these. Every shape is static (a training graph is
 * compiled for one batch shape), so `dims` knows every tensor the rules ask about.
 */
export class TrainingEmitter extends Emitter {
  private count = 0;
  /** Static dimensions of graph tensors and of the intermediates the rules record. */
  readonly dims = new Map<string, number[]>();
  /** Derived tensors computed once and shared by the rules that need them (keyed by what they derive from). */
  readonly memo = new Map<string, string>();

  constructor(shapes: Map<string, Shape>) {
    super(TRAINING_OPSET, false, new Map(), shapes, true);
    for (const [k, s] of shapes) this.dims.set(k, s.map((d) => d ?? -1));
  }

  shape(t: string): number[] {
    const d = this.dims.get(t);
    if (!d) throw new Error(`no static shape recorded for tensor "${t}"`);
    return d;
  }

  /** A fresh tensor name that says where it comes from. */
  fresh(hint: string): string {
    return `${hint}:${this.count++}`;
  }

  /** One op with one output, named from `hint`; records the output's dims when given. */
  t(opType: string, inputs: string[], attrs?: Attrs, hint = opType, dims?: number[], domain?: string): string {
    const out = this.fresh(hint);
    this.nodes.push({ opType, name: out, inputs, outputs: [out], ...(attrs ? { attributes: attrs } : {}), ...(domain ? { domain } : {}) });
    if (dims) this.dims.set(out, dims);
    return out;
  }

  /** One op with several outputs. */
  tn(opType: string, inputs: string[], outputs: number, attrs?: Attrs, hint = opType): string[] {
    const names = Array.from({ length: outputs }, (_, i) => this.fresh(`${hint}.${i}`));
    this.nodes.push({ opType, name: names[0]!, inputs, outputs: names, ...(attrs ? { attributes: attrs } : {}) });
    return names;
  }

  mul(a: string, b: string, hint = 'mul', dims?: number[]): string {
    return this.t('Mul', [a, b], undefined, hint, dims);
  }

  add(a: string, b: string, hint = 'add', dims?: number[]): string {
    return this.t('Add', [a, b], undefined, hint, dims);
  }

  sub(a: string, b: string, hint = 'sub', dims?: number[]): string {
    return this.t('Sub', [a, b], undefined, hint, dims);
  }

  /** Sum of one or more same-shape tensors (the tensor itself when there is one). */
  sum(parts: string[], hint = 'sum'): string {
    if (parts.length === 1) return parts[0]!;
    const d = this.dims.get(parts[0]!);
    return this.t(parts.length === 2 ? 'Add' : 'Sum', parts, undefined, hint, d);
  }

  reduceSum(x: string, axes: number[], keepdims: boolean, hint = 'reduce_sum'): string {
    const d = this.dims.get(x);
    const out = d ? reduced(d, axes, keepdims) : undefined;
    return this.t('ReduceSum', [x, this.int64Const(axes)], { keepdims: keepdims ? 1 : 0 }, hint, out);
  }

  reduceMean(x: string, axes: number[], keepdims: boolean, hint = 'reduce_mean'): string {
    const d = this.dims.get(x);
    return this.t('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 }, hint, d ? reduced(d, axes, keepdims) : undefined);
  }

  reshape(x: string, dims: number[], hint = 'reshape'): string {
    const cur = this.dims.get(x);
    if (cur && cur.length === dims.length && cur.every((d, i) => d === dims[i])) return x;
    return this.t('Reshape', [x, this.int64Const(dims)], undefined, hint, dims);
  }

  transpose(x: string, perm: number[], hint = 'transpose'): string {
    const d = this.dims.get(x);
    return this.t('Transpose', [x], { perm }, hint, d ? perm.map((p) => d[p]!) : undefined);
  }

  /** x[..., starts:ends:steps, ...] on the given axes. */
  slice(x: string, starts: number[], ends: number[], axes: number[], steps?: number[], hint = 'slice', dims?: number[]): string {
    const inputs = [x, this.int64Const(starts), this.int64Const(ends), this.int64Const(axes)];
    if (steps) inputs.push(this.int64Const(steps));
    return this.t('Slice', inputs, undefined, hint, dims);
  }

  /**
   * Per-channel y = x * a + b for NCHW or [N, C] x and [C] a, b: one pass (BatchNormalization with mean 0, var 1,
   * eps 0). `out` names the result instead of a fresh name.
   */
  affine(x: string, a: string, b: string, channels: number, hint = 'affine', out?: string): string {
    const inputs = [x, a, b, this.floatConst(new Array(channels).fill(0), [channels]), this.floatConst(new Array(channels).fill(1), [channels])];
    const attrs = { epsilon: { float: 0 } };
    if (!out) return this.t('BatchNormalization', inputs, attrs, hint, this.dims.get(x));
    this.op('BatchNormalization', out, inputs, [out], attrs);
    return out;
  }
}

function reduced(d: number[], axes: number[], keepdims: boolean): number[] {
  const ax = axes.map((a) => (a < 0 ? a + d.length : a));
  return keepdims ? d.map((v, i) => (ax.includes(i) ? 1 : v)) : d.filter((_, i) => !ax.includes(i));
}
