import { type Backend, checkGraphInput, EffnetError, type Graph, type LoadOptions, type Runner, type Tensor, type TensorMap, registerBackend } from '@effnet/core';
import type * as Ort from 'onnxruntime-node';
import { type CompileOptions, compileToOnnx } from './compile.js';

export type OnnxDevice = 'auto' | 'cpu' | 'cuda' | 'webgpu';

export interface OnnxLoadOptions extends LoadOptions, CompileOptions {
  device?: OnnxDevice;
}

export class DeviceUnavailableError extends EffnetError {
  override name = 'DeviceUnavailableError';
}

/** Kept under this package's name too: the check itself lives in core (checkGraphInput). */
export { InputError } from '@effnet/core';

const HINTS: Record<string, string> = {
  cuda:
    'onnxruntime-node ships its CUDA provider only after its install script ran with CUDA enabled: ' +
    'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install (needs CUDA 12 and cuDNN 9 on the machine)',
  webgpu: 'the WebGPU provider is bundled with onnxruntime-node but needs a GPU with a Vulkan/D3D12/Metal driver',
  cpu: 'the CPU provider is always bundled; reinstall onnxruntime-node',
};

/** ONNX Runtime's provider errors start with a source location; keep the last sentence, which says what failed. */
function shortReason(err: Error): string {
  const first = err.message.split('\n')[0] ?? '';
  const sentences = first.split(/\.\s+/).filter(Boolean);
  return (sentences.at(-1) ?? first).trim();
}

let ortPromise: Promise<typeof Ort> | undefined;
async function ort(): Promise<typeof Ort> {
  ortPromise ??= import('onnxruntime-node').then((m) => ((m as { default?: typeof Ort }).default ?? m) as typeof Ort);
  return ortPromise;
}

async function createSession(bytes: Uint8Array, device: Exclude<OnnxDevice, 'auto'>, o: OnnxLoadOptions, external?: { location: string; bytes: Uint8Array }) {
  const { InferenceSession, env } = await ort();
  env.logLevel = 'fatal';
  const opts: Ort.InferenceSession.SessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    // Libraries never print: a missing provider is reported through our error or the runner's notes instead.
    logSeverityLevel: 4,
    ...(o.threads ? { intraOpNumThreads: o.threads, interOpNumThreads: 1 } : {}),
    ...(external ? { externalData: [{ path: external.location, data: external.bytes }] } : {}),
  };
  return InferenceSession.create(bytes, opts);
}

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
export class OnnxBackend implements Backend {
  readonly name = 'onnx';

  async load(graph: Graph, weights: TensorMap, options: OnnxLoadOptions = {}): Promise<OnnxRunner> {
    const device = options.device ?? 'cpu';
    const compiled = compileToOnnx(graph, weights, options);
    const order: Exclude<OnnxDevice, 'auto'>[] = device === 'auto' ? ['cuda', 'webgpu', 'cpu'] : [device];
    if (!order.every((d) => d in HINTS)) throw new DeviceUnavailableError(`device "${device}" is not one of auto, cpu, cuda, webgpu`);
    const notes: string[] = [];
    for (const d of order) {
      try {
        const session = await createSession(compiled.model, d, options, compiled.externalData);
        if (device === 'auto') notes.push(`picked ${d}`);
        return new OnnxRunner(session, graph, d, notes, compiled.model, options.allowNonFinite);
      } catch (err) {
        const reason = shortReason(err as Error);
        if (device !== 'auto') throw new DeviceUnavailableError(`device "${d}" is unavailable: ${reason}. ${HINTS[d]}`);
        notes.push(`skipped ${d}: ${reason}`);
      }
    }
    throw new DeviceUnavailableError(`no execution provider could run the model: ${notes.join('; ')}`);
  }
}

registerBackend('onnx', async () => new OnnxBackend());
