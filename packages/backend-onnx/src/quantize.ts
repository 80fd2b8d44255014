/**
 * Static int8 quantization in ONNX's QDQ form, applied by the compiler to its own fp32 nodes: every activation that
 * enters or leaves a Conv or Gemm goes through QuantizeLinear -> DequantizeLinear with a scale from calibration
 * (uint8 asymmetric by default: x86's VNNI kernels multiply uint8 activations by int8 weights), weights are int8
 * symmetric per output channel, biases int32 at input scale x weight scale. ONNX Runtime fuses each DQ -> Conv -> Q
 * into QLinearConv (and Gemm into QGemm), so the convolutions run on its int8 kernels; the other nodes (sigmoid, the
 * SiLU and squeeze-excite multiplies, pooling) read dequantized values and stay float32.
 *
 * Calibration: `calibrationTensors` names what needs a range; `RangeCollector` turns observed values into ranges by
 * min/max, a percentile of |x|, or the threshold that minimises the KL divergence of the quantized histogram (entropy).
 */
import { EffnetError } from '@effnet/core';
import { DataType, type OnnxNode, type OnnxTensor } from './onnx-proto.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

export interface Int8Options {
  /** [min, max] of every tensor named by calibrationTensors (and the graph input). */
  ranges: Record<string, [number, number]>;
  /** Activation type: uint8 asymmetric (default; what x86 VNNI kernels take) or int8 symmetric. */
  activations?: 'uint8' | 'int8';
}

export class QuantizationError extends EffnetError {
  override name = 'QuantizationError';
}

const QUANTIZED_OPS = new Set(['Conv', 'Gemm']);
/**
 * Ops whose outputs are quantized too, so that ONNX Runtime runs them on quantized values (QLinearSigmoid,
 * QLinearMul, QLinearAdd, QLinearGlobalAveragePool) and keeps the network in its int8 NHWC layout between convs,
 * instead of dequantizing, computing in float32 and quantizing again around every SiLU and squeeze-excite multiply.
 */
const QUANTIZED_OUTPUT_OPS = new Set(['Conv', 'Gemm', 'Sigmoid', 'Mul', 'Add', 'Sum', 'GlobalAveragePool', 'Flatten', 'Relu', 'Clip', 'MaxPool', 'Concat']);

/**
 * The activations that need a calibrated range: the data input, the input of every Conv and Gemm, and the outputs of
 * the ops above, except the model's outputs (they stay float32).
 */
export function calibrationTensors(nodes: readonly OnnxNode[], graphOutputs: readonly string[] = []): string[] {
  const out = new Set<string>();
  const final = new Set(graphOutputs);
  for (const n of nodes) {
    if (QUANTIZED_OPS.has(n.opType)) out.add(n.inputs[0]!);
    if (QUANTIZED_OUTPUT_OPS.has(n.opType) && !final.has(n.outputs[0]!)) out.add(n.outputs[0]!);
  }
  return [...out];
}

/** scale and zero point of an activation range; the range always holds 0 (exactly representable). */
export function activationQuantParams(min: number, max: number, type: 'uint8' | 'int8'): { scale: number; zeroPoint: number } {
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  if (type === 'int8') {
    const a = Math.max(Math.abs(lo), Math.abs(hi));
    return { scale: a > 0 ? a / 127 : 1, zeroPoint: 0 };
  }
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
}

const f32 = (t: OnnxTensor): Float32Array => {
  if (!t.raw || t.dataType !== DataType.FLOAT) throw new QuantizationError(`weight "${t.name}" is not an in-memory float32 initializer; int8 export needs fp32 weights without external data`);
  return new Float32Array(t.raw.buffer.slice(t.raw.byteOffset, t.raw.byteOffset + t.raw.byteLength));
};
const bytes = (a: Int8Array | Uint8Array | Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Symmetric int8 per output channel (axis 0): scales per channel, values rounded and clamped to [-127, 127]. */
export function quantizeWeightPerChannel(w: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let a = 0;
    for (let i = c * per; i < (c + 1) * per; i++) a = Math.max(a, Math.abs(w[i]!));
    const s = a > 0 ? a / 127 : 1;
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / s)));
  }
  return { q, scales };
}

/**
 * Rewrites fp32 nodes and initializers (as the compiler emitted them, topologically ordered) into the QDQ form.
 * Every consumer of a quantized activation reads its dequantized value.
 */
export function insertQdq(nodes: OnnxNode[], initializers: OnnxTensor[], inputName: string, graphOutputs: readonly string[], o: Int8Options): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  const type = o.activations ?? 'uint8';
  const qType = type === 'uint8' ? DataType.UINT8 : DataType.INT8;
  const inits = new Map(initializers.map((t) => [t.name, t]));
  const outInits: OnnxTensor[] = initializers.filter((t) => !usedAsQuantizedParam(t.name, nodes));
  const out: OnnxNode[] = [];
  const dq = new Map<string, string>();
  const params = new Map<string, { scale: number; zeroPoint: number }>();
  const wanted = new Set(calibrationTensors(nodes, graphOutputs));
  const done = new Set<string>();

  const quantizeActivation = (name: string) => {
    const r = o.ranges[name];
    if (!r) throw new QuantizationError(`no calibration range for tensor "${name}"; calibrate the model before exporting it as int8`);
    const p = activationQuantParams(r[0], r[1], type);
    params.set(name, p);
    const scale = `${name}/q_scale`;
    const zp = `${name}/q_zero_point`;
    outInits.push({ name: scale, dataType: DataType.FLOAT, dims: [], raw: bytes(Float32Array.of(p.scale)) });
    outInits.push({ name: zp, dataType: qType, dims: [], raw: type === 'uint8' ? Uint8Array.of(p.zeroPoint) : bytes(Int8Array.of(p.zeroPoint)) });
    out.push({ opType: 'QuantizeLinear', name: `${name}/quantize`, inputs: [name, scale, zp], outputs: [`${name}/q`] });
    out.push({ opType: 'DequantizeLinear', name: `${name}/dequantize`, inputs: [`${name}/q`, scale, zp], outputs: [`${name}/dq`] });
    dq.set(name, `${name}/dq`);
  };

  if (wanted.has(inputName)) quantizeActivation(inputName);
  for (const n of nodes) {
    const inputs = n.inputs.map((i) => dq.get(i) ?? i);
    if (QUANTIZED_OPS.has(n.opType)) {
      const x = n.inputs[0]!;
      const xs = params.get(x)!.scale;
      const w = inits.get(n.inputs[1]!);
      if (!w) throw new QuantizationError(`${n.opType} "${n.name}": its weight "${n.inputs[1]}" is not an initializer`);
      // Gemm: one scale for the matrix (per-channel B is not what ORT's QGemm fuses); Conv: per output channel.
      const channels = n.opType === 'Conv' ? w.dims[0]! : 1;
      const { q, scales } = quantizeWeightPerChannel(f32(w), channels);
      const axis = n.opType === 'Conv' ? { axis: 0 } : undefined;
      const shape1 = n.opType === 'Conv' ? [channels] : [];
      if (!done.has(w.name)) {
        done.add(w.name);
        outInits.push({ name: `${w.name}/int8`, dataType: DataType.INT8, dims: w.dims, raw: bytes(q) });
        outInits.push({ name: `${w.name}/scale`, dataType: DataType.FLOAT, dims: shape1, raw: bytes(scales) });
        outInits.push({ name: `${w.name}/zero_point`, dataType: DataType.INT8, dims: shape1, raw: new Uint8Array(channels) });
        out.push({ opType: 'DequantizeLinear', name: `${w.name}/dequantize`, inputs: [`${w.name}/int8`, `${w.name}/scale`, `${w.name}/zero_point`], outputs: [`${w.name}/dq`], ...(axis ? { attributes: axis } : {}) });
      }
      inputs[1] = `${w.name}/dq`;
      if (n.inputs[2]) {
        if (done.has(n.inputs[2])) throw new QuantizationError(`bias "${n.inputs[2]}" is shared by several ${n.opType} nodes; int8 export needs a bias per layer`);
        done.add(n.inputs[2]);
        const b = f32(inits.get(n.inputs[2])!);
        const bs = Float32Array.from(b, (_, c) => xs * scales[channels === 1 ? 0 : c]!);
        const bq = Int32Array.from(b, (v, c) => Math.round(v / bs[c]!));
        const bn = n.inputs[2];
        outInits.push({ name: `${bn}/int32`, dataType: DataType.INT32, dims: [b.length], raw: bytes(bq) });
        outInits.push({ name: `${bn}/scale`, dataType: DataType.FLOAT, dims: [b.length], raw: bytes(bs) });
        outInits.push({ name: `${bn}/zero_point`, dataType: DataType.INT32, dims: [b.length], raw: bytes(new Int32Array(b.length)) });
        out.push({ opType: 'DequantizeLinear', name: `${bn}/dequantize`, inputs: [`${bn}/int32`, `${bn}/scale`, `${bn}/zero_point`], outputs: [`${bn}/dq`], attributes: { axis: 0 } });
        inputs[2] = `${bn}/dq`;
      }
    }
    out.push({ ...n, inputs });
    for (const y of n.outputs) if (wanted.has(y) && !dq.has(y)) quantizeActivation(y);
  }
  return { nodes: out, initializers: outInits };
}

/** Weights and biases read only by quantized ops (as weight or bias) are replaced by their int8/int32 forms. */
function usedAsQuantizedParam(name: string, nodes: readonly OnnxNode[]): boolean {
  let quantized = false;
  let other = false;
  for (const n of nodes)
    n.inputs.forEach((i, k) => {
      if (i !== name) return;
      if (QUANTIZED_OPS.has(n.opType) && k >= 1) quantized = true;
      else other = true;
    });
  return quantized && !other;
}

const BINS = 2048;

/**
 * Collects what calibration observes of each tensor: min and max, and (for percentile and entropy) a histogram of
 * |x| over [0, max|x|] filled in a second pass, once the first pass has fixed the histogram's range.
 */
export class RangeCollector {
  readonly min = new Map<string, number>();
  readonly max = new Map<string, number>();
  private readonly hist = new Map<string, Float64Array>();

  constructor(readonly method: CalibrationMethod = 'minmax', readonly percentile = 99.999) {}

  /** Whether observe() must see the data twice (once for the range, once for the histogram). */
  get passes(): number {
    return this.method === 'minmax' ? 1 : 2;
  }

  observe(name: string, data: Float32Array, pass: number): void {
    if (pass === 0) {
      let lo = this.min.get(name) ?? Infinity;
      let hi = this.max.get(name) ?? -Infinity;
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      this.min.set(name, lo);
      this.max.set(name, hi);
      return;
    }
    const a = Math.max(Math.abs(this.min.get(name)!), Math.abs(this.max.get(name)!));
    if (!(a > 0)) return;
    let h = this.hist.get(name);
    if (!h) this.hist.set(name, (h = new Float64Array(BINS)));
    const k = BINS / a;
    for (let i = 0; i < data.length; i++) h[Math.min(BINS - 1, Math.floor(Math.abs(data[i]!) * k))]! += 1;
  }

  /** The calibrated [min, max] of every observed tensor. */
  ranges(): Record<string, [number, number]> {
    const out: Record<string, [number, number]> = {};
    for (const [name, lo] of this.min) {
      const hi = this.max.get(name)!;
      const h = this.hist.get(name);
      if (this.method === 'minmax' || !h) {
        out[name] = [lo, hi];
        continue;
      }
      const a = Math.max(Math.abs(lo), Math.abs(hi));
      const t = (this.method === 'percentile' ? percentileBin(h, this.percentile) : entropyBin(h, lo >= 0 ? 255 : 128)) * (a / BINS);
      out[name] = [Math.max(lo, -t), Math.min(hi, t)];
    }
    return out;
  }
}

/** The end of the first bin at which `p` percent of the counts lie below. */
export function percentileBin(h: Float64Array, p: number): number {
  const total = h.reduce((s, v) => s + v, 0);
  let acc = 0;
  for (let i = 0; i < h.length; i++) {
    acc += h[i]!;
    if (acc >= (total * p) / 100) return i + 1;
  }
  return h.length;
}

/**
 * TensorRT's entropy calibration: the clipping bin (>= levels) whose quantization to `levels` levels loses the least
 * information, by the KL divergence between the clipped histogram (outliers folded into the last bin) and its
 * quantized-then-expanded form.
 */
export function entropyBin(h: Float64Array, levels: number): number {
  let best = h.length;
  let bestKl = Infinity;
  const step = Math.max(1, Math.floor(h.length / 256));
  for (let t = levels; t <= h.length; t += step) {
    const p = Array.from(h.subarray(0, t));
    let outliers = 0;
    for (let i = t; i < h.length; i++) outliers += h[i]!;
    p[t - 1]! += outliers;
    const q = new Float64Array(t);
    const per = t / levels;
    for (let j = 0; j < levels; j++) {
      const s = Math.floor(j * per);
      const e = j === levels - 1 ? t : Math.floor((j + 1) * per);
      let sum = 0;
      let nz = 0;
      for (let i = s; i < e; i++) {
        sum += h[i]!;
        if (h[i]! > 0) nz++;
      }
      for (let i = s; i < e; i++) q[i] = h[i]! > 0 ? sum / nz : 0;
    }
    const ps = p.reduce((a, b) => a + b, 0);
    const qs = q.reduce((a, b) => a + b, 0);
    if (!(ps > 0 && qs > 0)) continue;
    let kl = 0;
    for (let i = 0; i < t; i++) {
      const pi = p[i]! / ps;
      if (pi === 0) continue;
      const qi = q[i]! / qs;
      kl += qi > 0 ? pi * Math.log(pi / qi) : pi * 20;
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = t;
    }
  }
  return best;
}
