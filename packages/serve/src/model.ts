/**
 * A model being served: its graph's metadata in protocol terms, its runner, and the one batcher in front of it.
 * Requests of any number of rows go through `infer`; the batcher coalesces them and this module splits the batch's
 * outputs back per request.
 */
import { basename, extname } from 'node:path';
import { type Device, float32Tensor, type Graph, inferShapes, InvalidSpecError, type Runner, type Tensor } from '@effnet/core';
import type { ModelWeights } from '@effnet/tasks';
import { Batcher, type Clock } from './batcher.js';
import type { TensorMetadata } from './oip.js';
import { type TaskName, taskOf } from './tasks.js';

/** What `--model` asks for: the name in URLs and the model reference (zoo entry, checkpoint path, variant). */
export interface ModelSpec {
  name: string;
  model: string;
}

const SERVED_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * `name=model` or a bare model. A bare zoo entry or variant is served under its own name, a checkpoint path under its
 * directory's (or file's, without extension) base name.
 */
export function parseModelSpec(text: string): ModelSpec {
  const eq = text.indexOf('=');
  if (eq > 0 && SERVED_NAME.test(text.slice(0, eq))) return { name: text.slice(0, eq), model: text.slice(eq + 1) };
  const trimmed = text.replace(/[/\\]+$/, '');
  const base = basename(trimmed);
  const name = trimmed.includes('/') || trimmed.includes('\\') || /\.(json|safetensors|pth|pt|bin)$/i.test(base) ? base.slice(0, base.length - extname(base).length) || base : base;
  if (!SERVED_NAME.test(name)) throw new InvalidSpecError('--model', text, 'NAME=MODEL with a NAME of letters, digits, ".", "_" and "-" (the name in /v2/models/NAME/...)');
  return { name, model: text };
}

export interface BatchingOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  /** Per-request deadline (0: none). */
  timeoutMs: number;
  clock?: Clock;
}

export interface LoadServedModelOptions extends BatchingOptions {
  backend?: string;
  device?: Device;
  threads?: number;
  allowNonFinite?: boolean;
  /** Called for each batch a model ran (metrics). */
  onBatch?: (model: string, b: { rows: number; requests: number; ms: number; ok: boolean }) => void;
}

/** Rows of a request (its batch dimension) and their values. */
export interface Rows {
  shape: number[];
  data: Float32Array;
}

const PLATFORMS: Record<string, string> = { onnx: 'onnxruntime_onnx', tfjs: 'tensorflowjs' };

/** The protocol's view of a graph: FP32 tensors with -1 for the batch and any dynamic size. */
export function graphMetadata(graph: Graph): { inputs: TensorMetadata[]; outputs: TensorMetadata[] } {
  const shapes = inferShapes(graph);
  const dims = (s: (number | null)[]) => s.map((d) => d ?? -1);
  return {
    inputs: graph.inputs.map((i) => ({ name: i.name, datatype: 'FP32', shape: [-1, i.channels, i.height ?? -1, i.width ?? -1] })),
    outputs: graph.outputs.map((o) => ({ name: o, datatype: 'FP32', shape: dims(shapes.get(o)!) })),
  };
}

export class ServedModel {
  readonly version = '1';
  readonly inputs: TensorMetadata[];
  readonly outputs: TensorMetadata[];
  readonly batcher: Batcher<Rows, Record<string, Rows>>;
  readonly task: TaskName | undefined;

  constructor(
    readonly name: string,
    /** What it was loaded from (the --model reference). */
    readonly source: string,
    readonly weights: ModelWeights,
    readonly runner: Runner,
    readonly platform: string,
    batching: BatchingOptions & { onBatch?: LoadServedModelOptions['onBatch'] },
  ) {
    const meta = graphMetadata(weights.graph);
    this.inputs = meta.inputs;
    this.outputs = meta.outputs;
    this.task = taskOf(weights);
    this.batcher = new Batcher((batch) => this.runBatch(batch), {
      name,
      maxBatch: batching.maxBatch,
      maxDelayMs: batching.maxDelayMs,
      maxQueue: batching.maxQueue,
      timeoutMs: batching.timeoutMs,
      clock: batching.clock,
      onBatch: batching.onBatch ? (b) => batching.onBatch!(name, b) : undefined,
    });
  }

  get graph(): Graph {
    return this.weights.graph;
  }

  /** Model metadata as the protocol returns it. */
  metadata() {
    return { name: this.name, versions: [this.version], platform: this.platform, inputs: this.inputs, outputs: this.outputs };
  }

  /** Runs rows [n, ...] through the batcher; resolves with each output's rows for this request. */
  infer(rows: Rows, signal?: AbortSignal): Promise<Record<string, Rows>> {
    return this.batcher.submit(rows, { rows: rows.shape[0]!, key: rows.shape.slice(1).join('x'), signal });
  }

  /** One run for a batch of requests: their rows stacked, the outputs split back. */
  private async runBatch(batch: Rows[]): Promise<Record<string, Rows>[]> {
    const total = batch.reduce((s, r) => s + r.shape[0]!, 0);
    const per = batch[0]!.data.length / batch[0]!.shape[0]!;
    const data = batch.length === 1 ? batch[0]!.data : new Float32Array(total * per);
    if (batch.length > 1) {
      let off = 0;
      for (const r of batch) {
        data.set(r.data, off);
        off += r.data.length;
      }
    }
    const out = await this.runner.run(float32Tensor([total, ...batch[0]!.shape.slice(1)], data));
    return splitRows(out, batch.map((r) => r.shape[0]!));
  }

  async dispose(): Promise<void> {
    await this.batcher.close();
    await this.runner.dispose();
  }
}

/** Splits each output [N, ...] into consecutive row ranges of the given counts. */
export function splitRows(outputs: Record<string, Tensor>, counts: number[]): Record<string, Rows>[] {
  const result: Record<string, Rows>[] = counts.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    const n = t.shape[0]!;
    const per = n ? t.data.length / n : 0;
    const data = t.data as Float32Array;
    let row = 0;
    counts.forEach((c, i) => {
      result[i]![name] = { shape: [c, ...t.shape.slice(1)], data: data.slice(row * per, (row + c) * per) };
      row += c;
    });
  }
  return result;
}

/** Resolves and loads one model (zoo entry, checkpoint or variant) on a backend, with its batcher. */
export async function loadServedModel(spec: ModelSpec, o: LoadServedModelOptions): Promise<ServedModel> {
  const { loadModelWeights, loadRunner } = await import('@effnet/tasks');
  const m = await loadModelWeights(spec.model);
  const backendName = o.backend ?? 'onnx';
  const runner = await loadRunner(m, { backend: backendName, device: o.device ?? (backendName === 'onnx' ? 'cpu' : 'auto'), threads: o.threads, allowNonFinite: o.allowNonFinite });
  return new ServedModel(spec.name, spec.model, m, runner, PLATFORMS[backendName] ?? backendName, o);
}
