import { type Backend, EffnetError, checkGraphInput, type Graph, type LoadOptions, type OnnxModelBytes, type Runner, type Tensor, type TensorMap, type TrainingBackend, registerBackend } from '@effnet/core';
import type * as Ort from 'onnxruntime-node';
import { compileToOnnx } from './compile.js';
import { type OnnxLoadOptions, openSession, ort } from './ort.js';
import { OnnxTrainSession, type OnnxTrainerOptions } from './training/session.js';

/** A loaded ONNX model: one session, reused for every run; inputs checked before they reach the runtime. */
export class OnnxRunner implements Runner {
  constructor(
    private readonly session: Ort.InferenceSession,
    private readonly graph: Graph,
    readonly device: string,
    readonly notes: readonly string[],
    readonly model: Uint8Array,
    private readonly allowNonFinite = false,
  ) {}

  /** The ONNX model bytes this runner executes. */
  get onnx(): Uint8Array {
    return this.model;
  }

  async run(input: Tensor): Promise<Record<string, Tensor>> {
    const x = checkGraphInput(this.graph, input, { allowNonFinite: this.allowNonFinite });
    const { Tensor: OrtTensor } = await ort();
    const feeds = { [this.graph.inputs[0]!.name]: new OrtTensor('float32', x.data, x.shape) };
    const results = await this.session.run(feeds);
    const out: Record<string, Tensor> = {};
    for (const name of this.graph.outputs) {
      const t = results[name]!;
      out[name] = { dtype: 'float32', shape: t.dims.map(Number), data: t.data as Float32Array };
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** The ONNX Runtime backend: compiles the graph, then runs it on cpu, cuda or webgpu. */
export class OnnxBackend implements Backend, TrainingBackend {
  readonly name = 'onnx';

  async load(graph: Graph, weights: TensorMap, options: OnnxLoadOptions = {}): Promise<OnnxRunner> {
    const compiled = compileToOnnx(graph, weights, options);
    const { session, device, notes } = await openSession(compiled.model, options, compiled.externalData);
    return new OnnxRunner(session, graph, device, notes, compiled.model, options.allowNonFinite);
  }

  /** An ONNX model compiled before (an exported .onnx file); `graph` is its network, for input checks and output names. */
  async loadOnnx(model: OnnxModelBytes, graph: Graph, options: LoadOptions = {}): Promise<OnnxRunner> {
    const { session, device, notes } = await openSession(model.bytes, options as OnnxLoadOptions, model.externalData);
    const missing = graph.outputs.filter((o) => !session.outputNames.includes(o));
    if (missing.length || session.inputNames[0] !== graph.inputs[0]!.name) {
      await session.release();
      throw new EffnetError(
        `${model.path ?? 'the ONNX model'}: its input and outputs (${session.inputNames.join(', ')} -> ${session.outputNames.join(', ')}) are not those of the network its metadata describes (${graph.inputs[0]!.name} -> ${graph.outputs.join(', ')}); export it again with effnet export`,
      );
    }
    return new OnnxRunner(session, graph, device, notes, model.bytes, options.allowNonFinite);
  }

  /** Trains on ONNX Runtime: the graph differentiated into one training graph per batch shape (see OnnxTrainSession). */
  async createTrainer(graph: Graph, weights: TensorMap, options: OnnxTrainerOptions): Promise<OnnxTrainSession> {
    return OnnxTrainSession.create(graph, weights, options);
  }
}

registerBackend('onnx', async () => new OnnxBackend());
