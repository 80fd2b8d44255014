import { checkLoss, EffnetError, type Graph, inferShapes, InvalidSpecError, type LossSpec } from '@effnet/core';
import { DataType, encodeModel, type OnnxDataType, type OnnxValueInfo } from '../onnx-proto.js';
import { type BackwardContext, emitBackward } from './backward.js';
import { TRAINING_OPSET, TrainingEmitter } from './emitter.js';
import { emitTrainingForward, type MaskInput } from './forward.js';
import { emitLoss } from './losses.js';
import type { NchwcPlan } from './nchwc.js';

export interface TrainingGraphOptions {
  /** The batch size the graph is compiled for (every shape in a training graph is static). */
  batch: number;
  /** Image size where the graph's input is dynamic. */
  height?: number;
  width?: number;
  /** Parameters to differentiate (default: every trainable parameter). */
  trainable?: readonly string[];
  /**
   * The loss, or 'seed': the gradient of each graph output is then a graph input `seed:<output>`, so the graph
   * computes vector-Jacobian products (what gradient checks compare).
   */
  loss: LossSpec | 'seed';
  /** Dimensions of each loss target (default: `labels` [batch]). */
  targetDims?: Record<string, number[]>;
  /** BatchNorm on batch statistics with running-average updates (default true); false keeps running statistics. */
  trainBatchNorm?: boolean;
  /** Also output the gradient of each image input, `grad:<input>`. */
  inputGrads?: boolean;
  /** Depthwise convs through ORT's NCHWc kernels. */
  nchwc?: NchwcPlan | null;
}

/** Inputs: image, target, param, buffer, mask, seed. Outputs: loss, output, grad, stat (BatchNorm batch statistics). */
export type IoRole = 'image' | 'param' | 'buffer' | 'mask' | 'target' | 'seed' | 'loss' | 'output' | 'grad' | 'stat';

export interface TrainingIo {
  name: string;
  role: IoRole;
  dims: number[];
  dtype: 'float32' | 'int64';
  /** The parameter, node or graph tensor this input or output belongs to. */
  of?: string;
}

export interface TrainingGraph {
  model: Uint8Array;
  inputs: TrainingIo[];
  /** loss, the graph outputs, `grad:<param>`, and `stat:<running statistic>` (the batch mean or unbiased variance). */
  outputs: TrainingIo[];
  /** PyTorch's BatchNorm momentum for each running statistic with a `stat:` output. */
  momentum: Map<string, number>;
  masks: MaskInput[];
  /** Trainable parameters the loss does not reach (PyTorch leaves their .grad None and optimizers skip them). */
  noGradient: string[];
  nodeCount: number;
}

export class TrainingCompileError extends EffnetError {
  override name = 'TrainingCompileError';
}

function staticShapes(graph: Graph, o: { batch: number; height?: number; width?: number }) {
  // Shapes check the wiring; parameters may be shared between nodes (their gradients add up).
  const shapes = inferShapes(graph, { batch: o.batch, ...(o.height !== undefined ? { height: o.height } : {}), ...(o.width !== undefined ? { width: o.width } : {}) });
  for (const [name, s] of shapes)
    if (s.some((d) => d === null)) throw new TrainingCompileError(`tensor "${name}" has a dynamic size; give the image height and width to compile a training graph`);
  return shapes;
}

function encode(graph: Graph, e: TrainingEmitter, inputs: TrainingIo[], outputs: TrainingIo[], nchwc: boolean, doc: string): Uint8Array {
  const elem = (d: TrainingIo['dtype']): OnnxDataType => (d === 'int64' ? DataType.INT64 : DataType.FLOAT);
  const info = (io: TrainingIo): OnnxValueInfo => ({ name: io.name, elemType: elem(io.dtype), shape: io.dims });
  return encodeModel({
    irVersion: 8,
    opset: TRAINING_OPSET,
    producerName: 'effnet',
    producerVersion: '0.1.0',
    docString: `${doc} of ${graph.name}`,
    graphName: `${graph.name}_${doc.split(' ')[0]}`,
    nodes: e.nodes,
    initializers: e.initializers,
    inputs: inputs.map(info),
    outputs: outputs.map(info),
    metadata: { 'effnet.training': 'true' },
    extraOpsets: nchwc ? [{ domain: 'com.microsoft.nchwc', version: 1 }] : [],
  });
}

/**
 * The graph in inference mode (running statistics, no dropout) with parameters as graph inputs, so a trainer can
 * validate with its current weights without recompiling.
 */
export function compileEvalGraph(graph: Graph, o: { batch: number; height?: number; width?: number; nchwc?: NchwcPlan | null }): TrainingGraph {
  const e = new TrainingEmitter(staticShapes(graph, o));
  emitTrainingForward(e, graph, { trainBatchNorm: false, needsGrad: new Set(), nchwc: o.nchwc ?? null, inference: true });
  const inputs: TrainingIo[] = [
    ...graph.inputs.map((i): TrainingIo => ({ name: i.name, role: 'image', dims: e.shape(i.name), dtype: 'float32' })),
    ...graph.parameters.map((p): TrainingIo => ({ name: p.name, role: p.trainable ? 'param' : 'buffer', dims: p.shape, dtype: 'float32' })),
  ];
  const outputs = graph.outputs.map((out): TrainingIo => ({ name: out, role: 'output', dims: e.shape(out), dtype: 'float32' }));
  return { model: encode(graph, e, inputs, outputs, !!o.nchwc, 'inference graph'), inputs, outputs, masks: [], noGradient: [], nodeCount: e.nodes.length, momentum: new Map() };
}

/**
 * Differentiates a graph: forward in training mode, the loss, then one backward rule per node in reverse order, all
 * in one ONNX graph whose inputs are the images, targets, parameters, running statistics and dropout masks, and
 * whose outputs are the loss, the graph's outputs, the gradients and the BatchNorm batch statistics.
 */
export function compileTrainingGraph(graph: Graph, o: TrainingGraphOptions): TrainingGraph {
  const shapes = staticShapes(graph, o);
  const params = new Map(graph.parameters.map((p) => [p.name, p]));
  const trainable = new Set(o.trainable ?? graph.parameters.filter((p) => p.trainable).map((p) => p.name));
  for (const t of trainable)
    if (!params.get(t)?.trainable) throw new InvalidSpecError('trainable', t, 'names of trainable parameters of the graph (not BatchNorm running statistics)');
  if (o.loss !== 'seed') checkLoss(graph, o.loss);
  const trainBn = o.trainBatchNorm ?? true;

  const e = new TrainingEmitter(shapes);
  const targetDims = o.targetDims ?? { labels: [o.batch] };
  const targets = o.loss === 'seed' ? [] : o.loss.targets;
  for (const t of targets) {
    const d = targetDims[t.name];
    if (!d) throw new InvalidSpecError(`targetDims.${t.name}`, undefined, `the dimensions of loss target "${t.name}"`);
    e.dims.set(t.name, d);
  }

  // Which tensors depend on something differentiated, and which of those reach the loss.
  const readsTrainable = (n: Graph['nodes'][number]) => 'params' in n && Object.values(n.params as Record<string, string | undefined>).some((p) => p !== undefined && trainable.has(p));
  const requires = new Set<string>(o.inputGrads ? graph.inputs.map((i) => i.name) : []);
  for (const n of graph.nodes) if (readsTrainable(n) || n.inputs.some((i) => requires.has(i))) requires.add(n.name);
  const lossOutputs = o.loss === 'seed' ? graph.outputs : o.loss.terms.map((t) => t.output);
  const reaches = new Set<string>(lossOutputs);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (reaches.has(n.name)) for (const inp of n.inputs) reaches.add(inp);
  }
  const needsGrad = new Set([...requires].filter((t) => reaches.has(t)));

  const fwd = emitTrainingForward(e, graph, { trainBatchNorm: trainBn, needsGrad, nchwc: o.nchwc ?? null });

  let loss: string | undefined;
  let outputGrads: Map<string, string>;
  if (o.loss === 'seed') {
    outputGrads = new Map(graph.outputs.map((out) => [out, `seed:${out}`]));
    for (const out of graph.outputs) e.dims.set(`seed:${out}`, e.shape(out));
  }
  else ({ loss, outputGrads } = emitLoss(e, o.loss));

  const grads = new Map<string, string[]>();
  const paramGrads = new Map<string, string[]>();
  const push = (m: Map<string, string[]>, k: string, g: string) => m.set(k, [...(m.get(k) ?? []), g]);
  for (const [out, g] of outputGrads) if (needsGrad.has(out)) push(grads, out, g);
  const ctx: BackwardContext = {
    e,
    saved: fwd.saved,
    needsGrad: (t) => needsGrad.has(t),
    trainable: (p) => trainable.has(p),
    addGrad: (t, g) => push(grads, t, g),
    addParamGrad: (p, g) => push(paramGrads, p, g),
    trainBatchNorm: trainBn,
    ...(o.nchwc ? { nchwcBlock: o.nchwc.blockSize } : {}),
  };
  // The total gradient of a tensor, at its shape: contributions that only broadcast to it (a pooled gradient)
  // are added to a full one, or expanded when there is none.
  const total = (tensor: string, parts: string[]): string => {
    const dims = e.shape(tensor);
    const full = (t: string) => e.shape(t).every((d, i) => d === dims[i]);
    const ordered = [...parts.filter(full), ...parts.filter((t) => !full(t))];
    const sum = e.sum(ordered, `grad/${tensor}/total`);
    return full(ordered[0]!) ? sum : e.t('Expand', [sum, e.int64Const(dims)], undefined, `grad/${tensor}/expand`, dims);
  };
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i]!;
    const parts = grads.get(node.name);
    if (!parts) continue;
    grads.delete(node.name);
    emitBackward(ctx, node, total(node.name, parts));
  }

  const inputs: TrainingIo[] = [];
  const outputs: TrainingIo[] = [];
  for (const inp of graph.inputs) inputs.push({ name: inp.name, role: 'image', dims: e.shape(inp.name), dtype: 'float32' });
  for (const t of targets) inputs.push({ name: t.name, role: 'target', dims: e.shape(t.name), dtype: t.dtype });
  for (const p of graph.parameters) inputs.push({ name: p.name, role: p.trainable ? 'param' : 'buffer', dims: p.shape, dtype: 'float32' });
  for (const m of fwd.masks) inputs.push({ name: m.name, role: 'mask', dims: m.dims, dtype: 'float32', of: m.node });
  if (o.loss === 'seed') for (const out of graph.outputs) inputs.push({ name: `seed:${out}`, role: 'seed', dims: e.shape(out), dtype: 'float32', of: out });

  const alias = (from: string, to: string) => e.op('Identity', to, [from], [to]);
  if (loss) {
    alias(loss, 'loss');
    outputs.push({ name: 'loss', role: 'loss', dims: [], dtype: 'float32' });
  }
  for (const out of graph.outputs) outputs.push({ name: out, role: 'output', dims: e.shape(out), dtype: 'float32' });
  const noGradient: string[] = [];
  const summed = new Map<string, string>();
  for (const p of graph.parameters) {
    if (!trainable.has(p.name)) continue;
    const parts = paramGrads.get(p.name);
    if (!parts) noGradient.push(p.name);
    else summed.set(p.name, e.sum(parts, `grad:${p.name}/total`));
  }
  for (const [p, g] of summed) {
    alias(g, `grad:${p}`);
    outputs.push({ name: `grad:${p}`, role: 'grad', dims: params.get(p)!.shape, dtype: 'float32', of: p });
  }
  if (o.inputGrads)
    for (const inp of graph.inputs) {
      const parts = grads.get(inp.name);
      if (!parts) continue;
      alias(total(inp.name, parts), `grad:${inp.name}`);
      outputs.push({ name: `grad:${inp.name}`, role: 'grad', dims: e.shape(inp.name), dtype: 'float32', of: inp.name });
    }
  for (const u of fwd.bnStats) {
    alias(u.tensor, `stat:${u.param}`);
    outputs.push({ name: `stat:${u.param}`, role: 'stat', dims: params.get(u.param)!.shape, dtype: 'float32', of: u.param });
  }

  const model = encode(graph, e, inputs, outputs, !!o.nchwc, 'training graph: forward in training mode, loss and backward pass');
  return { model, inputs, outputs, masks: fwd.masks, noGradient, nodeCount: e.nodes.length, momentum: new Map(fwd.bnStats.map((u) => [u.param, u.momentum])) };
}
