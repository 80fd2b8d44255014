import type * as Ort from 'onnxruntime-node';
import { availableParallelism } from 'node:os';
import { EffnetError, type LoadOptions } from '@effnet/core';
import type { CompileOptions } from './compile.js';

export type OnnxDevice = 'auto' | 'cpu' | 'cuda' | 'webgpu';

export interface OnnxLoadOptions extends LoadOptions, CompileOptions {
  device?: OnnxDevice;
  /**
   * Keep the compiled model and ONNX Runtime's optimized model on disk (model-cache.ts) and reuse them: true, a cache
   * directory, or false. Default: the environment's EFFNET_COMPILE_CACHE=1 (the effnet command sets it), else false.
   */
  compiledCache?: boolean | string;
}

export class DeviceUnavailableError extends EffnetError {
  override name = 'DeviceUnavailableError';
}

/** Kept under this package's name too: inputs are checked by core's checkGraphInput, which throws it. */
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
/** onnxruntime-node, imported on first use. */
export async function ort(): Promise<typeof Ort> {
  ortPromise ??= import('onnxruntime-node').then((m) => ((m as { default?: typeof Ort }).default ?? m) as typeof Ort);
  return ortPromise;
}

/** Intra-op threads when none are asked for: the CPUs this process may use. */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

async function createSession(
  bytes: Uint8Array,
  device: Exclude<OnnxDevice, 'auto'>,
  o: OnnxLoadOptions,
  external?: { location: string; bytes: Uint8Array },
  extra: Ort.InferenceSession.SessionOptions = {},
) {
  const { InferenceSession, env } = await ort();
  env.logLevel = 'fatal';
  const opts: Ort.InferenceSession.SessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    // Libraries never print: a missing provider is reported through our error or the runner's notes instead.
    logSeverityLevel: 4,
    // One intra-op thread per CPU the process may use unless told otherwise: onnxruntime-node's own default ran
    // EfficientNet-B0 at half speed on a 2-CPU machine (measured: README, "A fast classify path").
    intraOpNumThreads: o.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    ...(external ? { externalData: [{ path: external.location, data: external.bytes }] } : {}),
    ...extra,
  };
  return InferenceSession.create(bytes, opts);
}

/** A session on the requested device; with 'auto', the first of cuda, webgpu, cpu that loads (notes say why others did not). */
export async function openSession(
  model: Uint8Array,
  options: OnnxLoadOptions,
  external?: { location: string; bytes: Uint8Array },
  extra?: Ort.InferenceSession.SessionOptions,
): Promise<{ session: Ort.InferenceSession; device: Exclude<OnnxDevice, 'auto'>; notes: string[] }> {
  const device = options.device ?? 'cpu';
  const order: Exclude<OnnxDevice, 'auto'>[] = device === 'auto' ? ['cuda', 'webgpu', 'cpu'] : [device];
  if (!order.every((d) => d in HINTS)) throw new DeviceUnavailableError(`device "${device}" is not one of auto, cpu, cuda, webgpu`);
  const notes: string[] = [];
  for (const d of order) {
    try {
      const session = await createSession(model, d, options, external, extra);
      if (device === 'auto') notes.push(`picked ${d}`);
      return { session, device: d, notes };
    } catch (err) {
      const reason = shortReason(err as Error);
      if (device !== 'auto') throw new DeviceUnavailableError(`device "${d}" is unavailable: ${reason}. ${HINTS[d]}`);
      notes.push(`skipped ${d}: ${reason}`);
    }
  }
  throw new DeviceUnavailableError(`no execution provider could run the model: ${notes.join('; ')}`);
}



