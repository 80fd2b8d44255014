import { tf } from './tf.js';
import { EffnetError } from '@effnet/core';
import { registerWasmGradients } from './wasm-gradients.js';

/** 'auto': tfjs-node-gpu, tfjs-node, wasm, then pure JS. 'cpu': the fastest CPU runtime (tfjs-node, wasm, JS). */
export type TfjsDevice = 'auto' | 'gpu' | 'cpu' | 'wasm' | 'js';

export interface TfjsRuntime {
  /** tfjs backend name: 'tensorflow' (tfjs-node / tfjs-node-gpu), 'wasm' or 'cpu'. */
  backend: string;
  /** The package that provides it. */
  provider: string;
  /** Why each earlier choice was skipped, then what was picked. */
  notes: string[];
}

export class TfjsRuntimeError extends EffnetError {
  override name = 'TfjsRuntimeError';
}

const GPU_HINT =
  'install @tensorflow/tfjs-node-gpu (npm install @tensorflow/tfjs-node-gpu; it needs Linux x64 with CUDA 11.2 and cuDNN 8.1, and downloads libtensorflow at install)';
const NODE_HINT = 'install @tensorflow/tfjs-node (npm install @tensorflow/tfjs-node; it downloads libtensorflow at install)';

/** Distinguishes "not installed" from "installed but its native addon failed to load". */
function whyNot(pkg: string, err: unknown): string {
  const e = err as { code?: string; message?: string };
  if ((e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && e.message?.includes(pkg)) return `${pkg} is not installed`;
  return `${pkg} is installed but failed to load (native addon missing or broken: ${(e.message ?? String(err)).split('\n')[0]})`;
}

async function tryNative(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Promise<string | null> {
  try {
    await import(/* @vite-ignore */ pkg);
    await tf.setBackend('tensorflow');
    await tf.ready();
    return null;
  } catch (err) {
    return whyNot(pkg, err);
  }
}

async function useWasm(): Promise<string | null> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) return 'the wasm backend failed to initialise';
    await tf.ready();
    registerWasmGradients();
    return null;
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm failed to load: ${(err as Error).message}`;
  }
}

async function useJs(): Promise<string | null> {
  await import('@tensorflow/tfjs-backend-cpu');
  return (await tf.setBackend('cpu')) ? null : 'the JS cpu backend failed to initialise';
}

const CHAINS: Record<TfjsDevice, [string, () => Promise<string | null>][]> = {
  auto: [
    ['@tensorflow/tfjs-node-gpu', () => tryNative('@tensorflow/tfjs-node-gpu')],
    ['@tensorflow/tfjs-node', () => tryNative('@tensorflow/tfjs-node')],
    ['@tensorflow/tfjs-backend-wasm', useWasm],
    ['@tensorflow/tfjs-backend-cpu', useJs],
  ],
  gpu: [['@tensorflow/tfjs-node-gpu', () => tryNative('@tensorflow/tfjs-node-gpu')]],
  cpu: [
    ['@tensorflow/tfjs-node', () => tryNative('@tensorflow/tfjs-node')],
    ['@tensorflow/tfjs-backend-wasm', useWasm],
    ['@tensorflow/tfjs-backend-cpu', useJs],
  ],
  wasm: [['@tensorflow/tfjs-backend-wasm', useWasm]],
  js: [['@tensorflow/tfjs-backend-cpu', useJs]],
};

/**
 * Picks and activates a TensorFlow.js runtime (tfjs has one active backend per process). Reports what it got and
 * why earlier choices were skipped. An explicit 'gpu' that cannot be had is an error with the install hint.
 */
export async function selectRuntime(device: TfjsDevice = 'auto'): Promise<TfjsRuntime> {
  const chain = CHAINS[device];
  if (!chain) throw new TfjsRuntimeError(`device "${device}" is not one of ${Object.keys(CHAINS).join(', ')}`);
  // Libraries never print: production mode silences tfjs's console hints (e.g. "install tfjs-node").
  tf.env().set('PROD', true);
  const notes: string[] = [];
  for (const [provider, attempt] of chain) {
    const reason = await attempt();
    if (reason === null) {
      notes.push(`picked ${tf.getBackend()} (${provider})`);
      return { backend: tf.getBackend(), provider, notes };
    }
    notes.push(`skipped ${provider}: ${reason}`);
  }
  const hint = device === 'gpu' ? GPU_HINT : device === 'cpu' ? NODE_HINT : 'reinstall @effnet/backend-tfjs';
  throw new TfjsRuntimeError(`no TensorFlow.js runtime for device "${device}": ${notes.join('; ')}. To fix: ${hint}`);
}


export { tf } from './tf.js';
