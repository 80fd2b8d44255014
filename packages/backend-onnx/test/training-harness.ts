/** Running training graphs directly on onnxruntime-node, for the gradient and parity tests. */
import { float32Tensor, type Graph, numel, seededNormal, seededRandom, type Tensor, type TensorMap } from '@effnet/core';
import * as ort from 'onnxruntime-node';
import { compileTrainingGraph, type TrainingGraph, type TrainingGraphOptions } from '../src/index.js';

export interface GradCase {
  name: string;
  graph: Graph;
  weights: TensorMap;
  /** Image inputs by name. */
  inputs: Map<string, Tensor>;
  trainBatchNorm: boolean;
}

export interface VjpResult {
  tg: TrainingGraph;
  session: ort.InferenceSession;
  feeds: Record<string, ort.Tensor>;
  seeds: Map<string, Float32Array>;
  /** Graph outputs, gradients (`grad:<param or input>`) and new running statistics (`new:<stat>`). */
  values: Map<string, Float32Array>;
}

const t32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

export function normalArray(n: number, seed: number, scale = 1): Float32Array {
  const r = seededNormal(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * r();
  return a;
}

/** Dropout masks as the trainer draws them: 0 or 1 / (1 - rate). */
export function masksFor(tg: TrainingGraph, seed: number): Map<string, Float32Array> {
  const u = seededRandom(seed);
  return new Map(tg.masks.map((m) => [m.name, Float32Array.from({ length: numel(m.dims) }, () => (u() >= m.rate ? 1 / (1 - m.rate) : 0))]));
}

/** Compiles `c` with seeded output gradients and runs it once: outputs, gradients and the session for reruns. */
export async function vjp(c: GradCase, seed: number, extra: Partial<TrainingGraphOptions> = {}): Promise<VjpResult> {
  const first = c.inputs.values().next().value!;
  const [batch, , height, width] = first.shape as [number, number, number, number];
  const size = c.graph.inputs[0]!.height === null ? { height, width } : {};
  const tg = compileTrainingGraph(c.graph, { batch, ...size, loss: 'seed', inputGrads: true, trainBatchNorm: c.trainBatchNorm, ...extra });
  const session = await ort.InferenceSession.create(tg.model, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  const seeds = new Map<string, Float32Array>();
  const masks = masksFor(tg, seed + 11);
  const feeds: Record<string, ort.Tensor> = {};
  let k = 0;
  for (const io of tg.inputs) {
    if (io.role === 'image') feeds[io.name] = t32(c.inputs.get(io.name)!.data as Float32Array, io.dims);
    else if (io.role === 'param' || io.role === 'buffer') feeds[io.name] = t32(c.weights.get(io.name)!.data as Float32Array, io.dims);
    else if (io.role === 'mask') feeds[io.name] = t32(masks.get(io.name)!, io.dims);
    else if (io.role === 'seed') {
      const s = normalArray(numel(io.dims), seed + 100 + k++);
      seeds.set(io.of!, s);
      feeds[io.name] = t32(s, io.dims);
    }
  }
  const values = await runValues(session, feeds);
  return { tg, session, feeds, seeds, values };
}

export async function runValues(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Map<string, Float32Array>> {
  const r = await session.run(feeds);
  return new Map(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
}

/** sum_o <output_o, seed_o> in float64. */
export function seededObjective(values: Map<string, Float32Array>, seeds: Map<string, Float32Array>): number {
  let f = 0;
  for (const [o, s] of seeds) {
    const y = values.get(o)!;
    for (let i = 0; i < s.length; i++) f += y[i]! * s[i]!;
  }
  return f;
}

/**
 * Central difference of the objective along a random direction of one input tensor, against the analytic
 * directional derivative <grad, v>. Returns both.
 */
export async function directional(r: VjpResult, tensor: string, seed: number, relStep = 1e-2): Promise<{ fd: number; analytic: number }> {
  const base = r.feeds[tensor]!.data as Float32Array;
  const v = normalArray(base.length, seed);
  let rms = 0;
  for (const b of base) rms += b * b;
  rms = Math.sqrt(rms / base.length);
  const h = relStep * Math.max(rms, 0.1);
  const at = async (sign: number) => {
    const moved = Float32Array.from(base, (b, i) => b + sign * h * v[i]!);
    const values = await runValues(r.session, { ...r.feeds, [tensor]: t32(moved, [...r.feeds[tensor]!.dims]) });
    return seededObjective(values, r.seeds);
  };
  const fd = ((await at(1)) - (await at(-1))) / (2 * h);
  const g = r.values.get(`grad:${tensor}`)!;
  let analytic = 0;
  for (let i = 0; i < g.length; i++) analytic += g[i]! * v[i]!;
  return { fd, analytic };
}

/** A float32 tensor of seeded N(0, scale^2) values. */
export function normalTensor(shape: number[], seed: number, scale = 1): Tensor {
  return float32Tensor(shape, normalArray(numel(shape), seed, scale));
}
