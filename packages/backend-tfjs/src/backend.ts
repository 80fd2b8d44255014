import {
  type Backend,
  bindWeights,
  checkGraphInput,
  EffnetError,
  type Graph,
  type LoadOptions,
  prepareForInference,
  registerBackend,
  type Runner,
  type StepResult,
  type Tensor,
  type TensorMap,
  type TrainerOptions,
  type TrainingBackend,
  type TrainSession,
} from '@effnet/core';
import { TfjsModel, toNhwc } from './model.js';
import { selectRuntime, type TfjsDevice, type TfjsRuntime } from './runtime.js';
import { tf } from './tf.js';
import { Trainer } from './training.js';

export interface TfjsLoadOptions extends LoadOptions {
  device?: TfjsDevice | 'cuda';
  /** Fold BatchNorm into convs for inference (default true). */
  foldBatchNorm?: boolean;
}

/** Kept under this package's name: inputs are checked by core's checkGraphInput, which throws InputError. */
export { InputError as TfjsInputError } from '@effnet/core';

/** Inference on TensorFlow.js; outputs come back NCHW like every backend's. */
export class TfjsRunner implements Runner {
  constructor(
    readonly model: TfjsModel,
    private readonly runtime: TfjsRuntime,
    private readonly allowNonFinite = false,
  ) {}

  get device(): string {
    return this.runtime.backend;
  }

  get notes(): readonly string[] {
    return this.runtime.notes;
  }

  async run(batch: Tensor): Promise<Record<string, Tensor>> {
    if (tf.getBackend() !== this.runtime.backend) await tf.setBackend(this.runtime.backend);
    return forwardNchw(this.model, checkGraphInput(this.model.graph, batch, { allowNonFinite: this.allowNonFinite }));
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Every output of a forward pass in inference mode, back in NCHW like every backend's. */
async function forwardNchw(model: TfjsModel, input: Tensor): Promise<Record<string, Tensor>> {
  const outs = tf.tidy(() => {
    const { outputs } = model.forward(toNhwc(input));
    return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.rank === 4 ? tf.transpose(v, [0, 3, 1, 2]) : v]));
  });
  const result: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(outs)) {
    result[k] = { dtype: 'float32', shape: [...v.shape], data: (await v.data()) as Float32Array };
    v.dispose();
  }
  return result;
}

/** Training through core's TrainSession interface: NCHW batches in, canonical weights out. */
export class TfjsTrainSession implements TrainSession {
  constructor(
    readonly model: TfjsModel,
    readonly trainer: Trainer,
    private readonly runtime: TfjsRuntime,
    private readonly allowNonFinite = false,
  ) {}

  get device(): string {
    return this.runtime.backend;
  }

  get notes(): readonly string[] {
    return this.runtime.notes;
  }

  get steps(): number {
    return this.trainer.steps;
  }

  async step(batch: Tensor, labels: Int32Array): Promise<StepResult> {
    const x = toNhwc(checkGraphInput(this.model.graph, batch, { allowNonFinite: this.allowNonFinite }));
    try {
      return this.trainer.trainStep(x, labels);
    } finally {
      x.dispose();
    }
  }

  /** tfjs trains classification only: the one target is `labels`. */
  async stepWith(batch: Tensor, targets: Record<string, Tensor>): Promise<StepResult> {
    const labels = targets.labels;
    const others = Object.keys(targets).filter((k) => k !== 'labels');
    if (!labels || others.length) throw new EffnetError(`the tfjs backend trains classification only (targets: labels); it got ${Object.keys(targets).join(', ')}: train this task on the onnx backend`);
    return this.step(batch, Int32Array.from(labels.data as ArrayLike<number | bigint>, (v) => Number(v)));
  }

  async predict(batch: Tensor): Promise<Tensor> {
    return (await this.predictAll(batch))[this.model.graph.outputs[0]!]!;
  }

  async predictAll(batch: Tensor): Promise<Record<string, Tensor>> {
    return forwardNchw(this.model, checkGraphInput(this.model.graph, batch, { allowNonFinite: this.allowNonFinite }));
  }

  weights(): TensorMap {
    return this.model.exportWeights();
  }

  dispose(): void {
    this.trainer.dispose();
    this.model.dispose();
  }
}

async function runtimeFor(options: { device?: string }): Promise<TfjsRuntime> {
  const device = options.device === 'cuda' ? 'gpu' : (options.device ?? 'auto');
  return selectRuntime(device as TfjsDevice);
}

/** The TensorFlow.js backend: tfjs-node-gpu, tfjs-node, wasm or JS, picked at run time. Inference and training. */
export class TfjsBackend implements Backend, TrainingBackend {
  readonly name = 'tfjs';

  async createTrainer(graph: Graph, weights: TensorMap, options: TrainerOptions & TfjsLoadOptions): Promise<TfjsTrainSession> {
    const ce = options.loss?.terms.length === 1 && options.loss.terms[0]!.kind === 'softmaxCrossEntropy' && options.loss.terms[0]!.ignoreIndex === undefined;
    if (options.loss && !ce) throw new EffnetError(`the tfjs backend trains classification only (softmax cross-entropy); this loss has ${options.loss.terms.map((t) => t.kind).join(' + ')}: train it on the onnx backend`);
    const runtime = await runtimeFor(options);
    const model = new TfjsModel(graph, bindWeights(graph, weights, { allowNonFinite: options.allowNonFinite }));
    return new TfjsTrainSession(model, new Trainer(model, options), runtime, options.allowNonFinite);
  }

  async load(graph: Graph, weights: TensorMap, options: TfjsLoadOptions = {}): Promise<TfjsRunner> {
    const runtime = await runtimeFor(options);
    const bound = bindWeights(graph, weights, { allowNonFinite: options.allowNonFinite });
    const prepared = prepareForInference(graph, bound, { foldBatchNorm: options.foldBatchNorm ?? true });
    return new TfjsRunner(new TfjsModel(prepared.graph, prepared.weights), runtime, options.allowNonFinite);
  }
}

registerBackend('tfjs', async () => new TfjsBackend());
