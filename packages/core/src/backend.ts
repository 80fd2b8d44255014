import type { Graph } from './graph.js';
import type { Tensor, TensorMap } from './tensor.js';

/** Where a backend runs: 'auto' picks the fastest that is available and reports which it got. */
export type Device = 'auto' | 'cpu' | 'cuda' | 'gpu' | 'webgpu' | 'wasm';

export interface LoadOptions {
  device?: Device;
  /** Intra-op threads (CPU). */
  threads?: number;
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
}

const registry = new Map<string, () => Promise<Backend>>();

/** Backends register a loader under a name ('onnx', 'tfjs'). */
export function registerBackend(name: string, loader: () => Promise<Backend>): void {
  registry.set(name, loader);
}

export function registeredBackends(): string[] {
  return [...registry.keys()];
}

/** The backend registered as `name`, or a clear error naming the package to install. */
export async function getBackend(name: string): Promise<Backend> {
  const loader = registry.get(name);
  if (!loader) {
    const known = registeredBackends();
    throw new Error(
      `backend "${name}" is not registered (registered: ${known.length ? known.join(', ') : 'none'}); install and import @effnet/backend-${name}`,
    );
  }
  return loader();
}
