import { getBackend, InvalidSpecError, type LoadOptions, type Runner } from '@effnet/core';
import type { ModelWeights } from './resolve.js';

export interface RunnerOptions extends LoadOptions {
  /** 'onnx' (default) or 'tfjs'. */
  backend?: string;
}

/**
 * The model on a backend: its graph and weights compiled by the backend, or, for an exported .onnx file, the file
 * itself (on a backend that runs ONNX).
 */
export async function loadRunner(m: ModelWeights, o: RunnerOptions = {}): Promise<Runner> {
  const name = o.backend ?? 'onnx';
  const backend = await getBackend(name);
  const { backend: _b, ...options } = o;
  if (!m.onnx) return backend.load(m.graph, m.weights, options);
  if (!backend.loadOnnx) throw new InvalidSpecError('--backend', name, `onnx: ${m.ref.name} is an ONNX file, which runs on ONNX Runtime (or give the checkpoint it was exported from)`);
  return backend.loadOnnx(m.onnx, m.graph, options);
}
