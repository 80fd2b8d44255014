import {
  bindWeights,
  checkGraphInput,
  classificationLoss,
  float32Tensor,
  type Graph,
  inferShapes,
  InvalidSpecError,
  learningRate,
  type LossSpec,
  numel,
  seededRandom,
  type StepResult,
  type Tensor,
  type TensorMap,
  type TrainerOptions,
  type TrainSession,
} from '@effnet/core';
import type * as Ort from 'onnxruntime-node';
import { DataType, encodeModel } from '../onnx-proto.js';
import { InputError, type OnnxDevice, type OnnxLoadOptions, openSession, ort } from '../ort.js';
import { probeNchwc, planNchwc } from './nchwc.js';
import { createState, gradNorm, type OptimizerState, optimizerStep } from './optimizer.js';
import { compileEvalGraph, compileTrainingGraph, type TrainingGraph } from './training-graph.js';

export interface OnnxTrainerOptions extends TrainerOptions, OnnxLoadOptions {
  /**
   * Depthwise convs through ONNX Runtime's internal NCHWc kernels, whose layout rewrite ORT skips when weights are
   * graph inputs: 'auto' (default) probes them once on this machine and falls back to standard operators.
   */
  nchwc?: boolean | 'auto';
}

interface Compiled {
  tg: TrainingGraph;
  session: Ort.InferenceSession;
}

const DEVICE_CHECK = encodeModel({
  irVersion: 8,
  opset: 17,
  producerName: 'effnet',
  producerVersion: '0.1.0',
  docString: 'device check',
  graphName: 'device_check',
  nodes: [{ opType: 'Identity', name: 'y', inputs: ['x'], outputs: ['y'] }],
  initializers: [],
  inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1] }],
  outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [1] }],
  metadata: {},
});

/** The dropout-mask seed of a step (the tfjs trainer's formula): same seed, same masks. */
const stepSeed = (seed: number, step: number) => (seed * 1_000_003 + step * 7919) >>> 0;

/**
 * Training on ONNX Runtime. The graph is differentiated once per batch shape into one ONNX graph that runs the
 * forward pass in training mode, the loss and the backward pass. The trainable weights live in one flat buffer whose
 * slices the graph reads as inputs (no copy); the gradients land in slices of another (preallocated outputs); the
 * optimizer then updates the weights in place, and the running statistics follow the batch statistics the graph
 * returns. No step copies the model.
 */
export class OnnxTrainSession implements TrainSession {
  private step_ = 0;
  /** Every parameter and buffer; trainable ones are views into `flatParams`. */
  private readonly current = new Map<string, Float32Array>();
  private readonly flatParams: Float32Array;
  private readonly flatGrads: Float32Array;
  /** Where each trainable parameter sits in the flat buffers. */
  private readonly offsets = new Map<string, [number, number]>();
  private readonly optState: OptimizerState;
  private readonly training = new Map<string, Compiled>();
  private readonly evaluation = new Map<string, Compiled>();
  private readonly loss: LossSpec;
  private readonly trainable: string[];
  private readonly shapes: Map<string, number[]>;

  private constructor(
    readonly graph: Graph,
    weights: TensorMap,
    readonly options: OnnxTrainerOptions,
    /** The provider every session of this trainer runs on. */
    private readonly picked: Exclude<OnnxDevice, 'auto'>,
    private readonly notes_: string[],
    private readonly nchwcBlock: number | null,
  ) {
    const { optimizer, labelSmoothing = 0 } = options;
    if (!(optimizer.lr > 0)) throw new InvalidSpecError('optimizer.lr', optimizer.lr, 'a positive learning rate');
    if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new InvalidSpecError('labelSmoothing', labelSmoothing, 'a number in [0, 1)');
    this.loss = options.loss ?? classificationLoss(graph, { labelSmoothing });
    this.trainable = options.trainable ?? graph.parameters.filter((p) => p.trainable).map((p) => p.name);
    const declared = new Map(graph.parameters.map((p) => [p.name, p]));
    const unknown = this.trainable.filter((n) => !declared.get(n)?.trainable);
    if (unknown.length) throw new InvalidSpecError('trainable', unknown.slice(0, 5), 'names of trainable parameters of the model');
    this.step_ = options.startStep ?? 0;
    this.shapes = new Map(graph.parameters.map((p) => [p.name, p.shape]));
    const bound = bindWeights(graph, weights, { allowNonFinite: options.allowNonFinite });
    let size = 0;
    for (const p of this.trainable) {
      const n = numel(declared.get(p)!.shape);
      this.offsets.set(p, [size, size + n]);
      size += n;
    }
    this.flatParams = new Float32Array(size);
    this.flatGrads = new Float32Array(size);
    this.optState = createState(optimizer, size);
    for (const p of graph.parameters) {
      const data = bound.get(p.name)!.data as Float32Array;
      const at = this.offsets.get(p.name);
      if (at) {
        const view = this.flatParams.subarray(at[0], at[1]);
        view.set(data);
        this.current.set(p.name, view);
      } else this.current.set(p.name, Float32Array.from(data));
    }
  }

  static async create(graph: Graph, weights: TensorMap, options: OnnxTrainerOptions): Promise<OnnxTrainSession> {
    let device: OnnxDevice = options.device ?? 'cpu';
    const notes: string[] = [];
    // Graphs are compiled per batch shape at the first step: settle the device now with a one-node model, so an
    // unavailable one is said at once and 'auto' knows what it picked.
    if (device !== 'cpu') {
      const check = await openSession(DEVICE_CHECK, { ...options, device });
      await check.session.release();
      notes.push(...check.notes);
      device = check.device;
    }
    let block: number | null = null;
    // The NCHWc kernels are CPU kernels.
    if (options.nchwc !== false && device === 'cpu') {
      block = await probeNchwc(options.threads);
      if (block === null && options.nchwc === true) notes.push('NCHWc kernels unavailable in this onnxruntime build: standard operators');
      else if (block !== null) notes.push(`depthwise convs on ORT's NCHWc kernels (block ${block})`);
    }
    return new OnnxTrainSession(graph, weights, options, device, notes, block);
  }

  get device(): string {
    return this.picked;
  }

  get notes(): readonly string[] {
    return this.notes_;
  }

  get steps(): number {
    return this.step_;
  }

  get currentLr(): number {
    return learningRate(this.options.optimizer.lr, this.options.schedule ?? { kind: 'constant' }, this.step_);
  }

  private async open(model: Uint8Array): Promise<Ort.InferenceSession> {
    // ORT's memory pattern preplans one block for every tensor of a run: for a training graph, whose activations
    // live until the backward pass, that block measured 1.37 GB against 0.78 GB allocating per tensor (B0, 128 px,
    // batch 16), and no faster.
    return (await openSession(model, { ...this.options, device: this.picked }, undefined, { enableMemPattern: false })).session;
  }

  private async compiled(batch: Tensor, targets: Record<string, Tensor>): Promise<Compiled> {
    const [n, , h, w] = batch.shape as [number, number, number, number];
    const key = [n, h, w, ...Object.entries(targets).map(([k, t]) => `${k}:${t.shape.join('x')}`)].join('/');
    let c = this.training.get(key);
    if (!c) {
      const tg = compileTrainingGraph(this.graph, {
        batch: n,
        height: h,
        width: w,
        trainable: this.trainable,
        loss: this.loss,
        targetDims: Object.fromEntries(Object.entries(targets).map(([k, t]) => [k, t.shape])),
        trainBatchNorm: !this.options.freezeBatchNorm,
        nchwc: this.nchwcBlock ? planNchwc(this.graph, this.nchwcBlock) : null,
      });
      c = { tg, session: await this.open(tg.model) };
      this.training.set(key, c);
    }
    return c;
  }

  /** Classification: one step on an NCHW float32 batch with integer labels. */
  async step(batch: Tensor, labels: Int32Array): Promise<StepResult> {
    const n = batch.shape[0]!;
    if (labels.length !== n) throw new InputError(`labels has ${labels.length} entries for a batch of ${n}`);
    return this.stepWith(batch, { labels: { dtype: 'int64', shape: [n], data: BigInt64Array.from(labels, (l) => BigInt(l)) } });
  }

  /** One step with the loss's targets by name (int64 or float32 tensors whose shapes the loss terms expect). */
  async stepWith(input: Tensor, targets: Record<string, Tensor>): Promise<StepResult> {
    const batch = checkGraphInput(this.graph, input, { allowNonFinite: this.options.allowNonFinite });
    for (const t of this.loss.targets) {
      const v = targets[t.name];
      if (!v) throw new InputError(`target "${t.name}" is missing; the loss reads ${this.loss.targets.map((x) => x.name).join(', ')}`);
      if (v.dtype !== t.dtype) throw new InputError(`target "${t.name}" must be ${t.dtype}, got ${v.dtype}`);
    }
    this.checkLabels(targets);
    const { tg, session } = await this.compiled(batch, targets);
    const { Tensor: OrtTensor } = await ort();
    const lr = this.currentLr;
    const random = seededRandom(stepSeed(this.options.seed ?? 0, this.step_));
    const feeds: Record<string, Ort.Tensor> = {};
    for (const io of tg.inputs) {
      switch (io.role) {
        case 'image':
          feeds[io.name] = new OrtTensor('float32', batch.data as Float32Array, io.dims);
          break;
        case 'target': {
          const t = targets[io.name]!;
          feeds[io.name] = new OrtTensor(t.dtype === 'int64' ? 'int64' : 'float32', t.data as Float32Array | BigInt64Array, io.dims);
          break;
        }
        case 'param':
        case 'buffer':
          feeds[io.name] = new OrtTensor('float32', this.current.get(io.name)!, io.dims);
          break;
        case 'mask': {
          const keep = 1 - tg.masks.find((m) => m.name === io.name)!.rate;
          const m = new Float32Array(numel(io.dims));
          for (let i = 0; i < m.length; i++) m[i] = random() < keep ? 1 / keep : 0;
          feeds[io.name] = new OrtTensor('float32', m, io.dims);
          break;
        }
        default:
          throw new Error(`unexpected training graph input role ${io.role}`);
      }
    }
    // Gradients land in their slices of the flat buffer; everything else is small and allocated by ORT.
    const fetches: Record<string, Ort.Tensor | null> = {};
    const segments: [number, number][] = [];
    for (const io of tg.outputs) {
      if (io.role === 'grad') {
        const at = this.offsets.get(io.of!)!;
        segments.push(at);
        fetches[io.name] = new OrtTensor('float32', this.flatGrads.subarray(at[0], at[1]), io.dims);
      } else fetches[io.name] = null;
    }
    const r = await session.run(feeds, fetches);
    // PyTorch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1. Without clipping the norm
    // comes out of the optimizer's own pass.
    const clip = this.options.clipGradNorm;
    const clipNorm = clip !== undefined ? gradNorm(this.flatGrads, segments) : 0;
    const scale = clip !== undefined ? Math.min(1, clip / (clipNorm + 1e-6)) : 1;
    const sumSq = optimizerStep(this.options.optimizer, this.optState, this.flatParams, this.flatGrads, segments, lr, this.step_, scale);
    const norm = clip !== undefined ? clipNorm : Math.sqrt(sumSq);
    for (const io of tg.outputs) {
      if (io.role !== 'stat') continue;
      // PyTorch's running averages: (1 - momentum) * running + momentum * batch (mean, unbiased variance).
      const m = tg.momentum.get(io.of!)!;
      const running = this.current.get(io.of!)!;
      const batchStat = r[io.name]!.data as Float32Array;
      for (let i = 0; i < running.length; i++) running[i] = (1 - m) * running[i]! + m * batchStat[i]!;
    }
    const loss = (r.loss!.data as Float32Array)[0]!;
    const accuracy = this.accuracy(r, targets);
    this.step_++;
    return { loss, accuracy, lr, gradNorm: norm };
  }

  private checkLabels(targets: Record<string, Tensor>): void {
    for (const term of this.loss.terms) {
      if (term.kind !== 'softmaxCrossEntropy') continue;
      const classes = this.graphOutputChannels(term.output);
      const data = targets[term.target]!.data as BigInt64Array;
      for (const l of data)
        if ((l < 0n || (Number.isFinite(classes) && l >= BigInt(classes))) && (term.ignoreIndex === undefined || l !== BigInt(term.ignoreIndex)))
          throw new InputError(`target "${term.target}" holds label ${l}, outside [0, ${classes}) for output "${term.output}"`);
    }
  }

  private graphOutputChannels(output: string): number {
    // Channels of the output whatever node produces it (a segmenter's logits come out of a resize).
    const c = inferShapes(this.graph).get(output)?.[1];
    return typeof c === 'number' ? c : Number.POSITIVE_INFINITY;
  }

  /** Share of the batch whose largest logit is its label (classification); NaN for other losses. */
  private accuracy(r: Ort.InferenceSession.OnnxValueMapType, targets: Record<string, Tensor>): number {
    const term = this.loss.terms[0]!;
    const labels = targets[term.target];
    const out = r[term.output];
    if (term.kind !== 'softmaxCrossEntropy' || !labels || !out || out.dims.length !== 2) return Number.NaN;
    const logits = out.data as Float32Array;
    const [n, c] = out.dims.map(Number) as [number, number];
    let correct = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < c; j++) if (logits[i * c + j]! > logits[i * c + best]!) best = j;
      if (BigInt(best) === (labels.data as BigInt64Array)[i]) correct++;
    }
    return correct / n;
  }

  /** The graph's first output in inference mode (running statistics, no dropout) with the current weights. */
  async predict(input: Tensor): Promise<Tensor> {
    return (await this.predictAll(input))[this.graph.outputs[0]!]!;
  }

  /** Every graph output in inference mode with the current weights. */
  async predictAll(input: Tensor): Promise<Record<string, Tensor>> {
    const batch = checkGraphInput(this.graph, input, { allowNonFinite: this.options.allowNonFinite });
    const [n, , h, w] = batch.shape as [number, number, number, number];
    const key = `${n}/${h}/${w}`;
    let c = this.evaluation.get(key);
    if (!c) {
      const tg = compileEvalGraph(this.graph, { batch: n, height: h, width: w, nchwc: this.nchwcBlock ? planNchwc(this.graph, this.nchwcBlock) : null });
      c = { tg, session: await this.open(tg.model) };
      this.evaluation.set(key, c);
    }
    const { Tensor: OrtTensor } = await ort();
    const feeds: Record<string, Ort.Tensor> = {};
    for (const io of c.tg.inputs) feeds[io.name] = new OrtTensor('float32', io.role === 'image' ? (batch.data as Float32Array) : this.current.get(io.name)!, io.dims);
    const results = await c.session.run(feeds);
    const out: Record<string, Tensor> = {};
    for (const name of this.graph.outputs) out[name] = { dtype: 'float32', shape: results[name]!.dims.map(Number), data: results[name]!.data as Float32Array };
    return out;
  }

  /** Every parameter and BatchNorm statistic under its canonical name (copies, PyTorch layouts, float32). */
  weights(): TensorMap {
    return new Map(this.graph.parameters.map((p) => [p.name, float32Tensor([...this.shapes.get(p.name)!], Float32Array.from(this.current.get(p.name)!))]));
  }

  dispose(): void {
    for (const c of [...this.training.values(), ...this.evaluation.values()]) void c.session.release();
    this.training.clear();
    this.evaluation.clear();
  }
}
