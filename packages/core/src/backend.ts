import type { Graph } from './graph.js';
import { EffnetError } from './errors.js';
import type { Tensor, TensorMap } from './tensor.js';

/** Where a backend runs: 'auto' picks the fastest that is available and reports which it got. */
export type Device = 'auto' | 'cpu' | 'cuda' | 'gpu' | 'webgpu' | 'wasm' | 'js';

export interface LoadOptions {
  device?: Device;
  /** Intra-op threads (CPU). */
  threads?: number;
  /** Accept NaN and infinities in weights and inputs (default false: an error naming the tensor). */
  allowNonFinite?: boolean;
}

/** A compiled, loaded model. `run` takes float32 NCHW and returns the graph's outputs by name. */
export interface Runner {
  /** What the backend actually runs on (e.g. 'cpu', 'cuda', 'wasm'), and why earlier choices were skipped. */
  readonly device: string;
  readonly notes: readonly string[];
  run(input: Tensor): Promise<Record<string, Tensor>>;
  dispose(): Promise<void> | void;
}

/** What each backend package implements; tasks reach backends only through this. */
export interface Backend {
  readonly name: string;
  load(graph: Graph, weights: TensorMap, options?: LoadOptions): Promise<Runner>;
  /**
   * A model already compiled to ONNX (an exported .onnx file): `graph` is the network it was compiled from, which
   * checks inputs and names the outputs. Only backends that run ONNX implement it.
   */
  loadOnnx?(model: OnnxModelBytes, graph: Graph, options?: LoadOptions): Promise<Runner>;
}

/** An ONNX model's bytes, and its external data file when its weights live outside it. */
export interface OnnxModelBytes {
  /** The model's bytes; without them, `path` is read when they are needed (a cached optimized model may not need them). */
  bytes?: Uint8Array;
  /** Where the model came from (named in errors; read when `bytes` are not given). */
  path?: string;
  externalData?: { location: string; bytes: Uint8Array };
}

const registry = new Map<string, () => Promise<Backend>>();

/** Backends register a loader under a name ('onnx', 'tfjs'). */
export function registerBackend(name: string, loader: () => Promise<Backend>): void {
  registry.set(name, loader);
}

export function registeredBackends(): string[] {
  return [...registry.keys()];
}

/** Backends effnet ships; each registers itself when its package is imported. */
export const BACKEND_PACKAGES: Readonly<Record<string, string>> = { onnx: '@effnet/backend-onnx', tfjs: '@effnet/backend-tfjs' };

/**
 * The backend registered as `name`. A known backend that is not registered yet is imported (its package registers
 * itself); one that is not installed is a clear error naming the package to install.
 */
export async function getBackend(name: string): Promise<Backend> {
  let loader = registry.get(name);
  const pkg = BACKEND_PACKAGES[name];
  if (!loader && pkg) {
    try {
      await import(/* @vite-ignore */ pkg);
    } catch (e) {
      throw new EffnetError(`backend "${name}" needs ${pkg}, which could not be loaded (${(e as Error).message}); install it with: npm install ${pkg}`);
    }
    loader = registry.get(name);
  }
  if (!loader) {
    const known = [...new Set([...Object.keys(BACKEND_PACKAGES), ...registeredBackends()])];
    throw new EffnetError(`backend "${name}" is not one of ${known.join(', ')}`);
  }
  return loader();
}
