/**
 * A Triton Inference Server model repository for an effnet model:
 *   DIR/<name>/config.pbtxt     the model configuration (text format of Triton's model_config.proto)
 *   DIR/<name>/labels.txt       class names, one per line, for a classifier's output (label_filename)
 *   DIR/<name>/1/model.onnx     the ONNX graph (+ model.onnx.data when the weights are stored outside)
 * The configuration uses the onnxruntime backend, a batch dimension of -1 (max_batch_size > 0, dims without it), and
 * dynamic batching with the same defaults as effnet serve.
 */
import { join } from 'node:path';
import { claimOutputDir, type Graph, InvalidSpecError, writeFileAtomic } from '@effnet/core';
import { graphMetadata } from './model.js';
import { SERVE_DEFAULTS } from './server.js';

export interface TritonConfigOptions {
  name: string;
  /** Largest batch Triton forms (max_batch_size). */
  maxBatchSize: number;
  /** How long a request may wait for others to join its batch. */
  maxQueueDelayMs: number;
  /** Tensors with their full shapes, batch first (-1). */
  inputs: { name: string; shape: number[] }[];
  outputs: { name: string; shape: number[] }[];
  /** The output whose classes labels.txt names. */
  labelOutput?: string;
}

const quote = (s: string) => JSON.stringify(s);

/** Preferred batch sizes: the powers of two from 2 up to the maximum, and the maximum. */
export function preferredBatchSizes(max: number): number[] {
  const sizes: number[] = [];
  for (let b = 2; b < max; b *= 2) sizes.push(b);
  if (max > 1) sizes.push(max);
  return sizes;
}

/** config.pbtxt for an ONNX model with FP32 NCHW input(s) and FP32 outputs. */
export function tritonModelConfig(o: TritonConfigOptions): string {
  if (!Number.isInteger(o.maxBatchSize) || o.maxBatchSize < 1) throw new InvalidSpecError('maxBatchSize', o.maxBatchSize, 'an integer >= 1');
  const dims = (shape: number[], what: string) => {
    if (shape[0] !== -1) throw new InvalidSpecError(`${what} shape`, shape, 'a batch dimension first (-1)');
    return `[ ${shape.slice(1).join(', ')} ]`;
  };
  const lines = [`name: ${quote(o.name)}`, 'platform: "onnxruntime_onnx"', 'backend: "onnxruntime"', `max_batch_size: ${o.maxBatchSize}`, 'input ['];
  o.inputs.forEach((t, i) => {
    lines.push('  {', `    name: ${quote(t.name)}`, '    data_type: TYPE_FP32', ...(t.shape.length === 4 ? ['    format: FORMAT_NCHW'] : []), `    dims: ${dims(t.shape, `input ${t.name}`)}`, `  }${i < o.inputs.length - 1 ? ',' : ''}`);
  });
  lines.push(']', 'output [');
  o.outputs.forEach((t, i) => {
    lines.push('  {', `    name: ${quote(t.name)}`, '    data_type: TYPE_FP32', `    dims: ${dims(t.shape, `output ${t.name}`)}`);
    if (t.name === o.labelOutput) lines.push('    label_filename: "labels.txt"');
    lines.push(`  }${i < o.outputs.length - 1 ? ',' : ''}`);
  });
  const preferred = preferredBatchSizes(o.maxBatchSize);
  lines.push(']', 'dynamic_batching {');
  if (preferred.length) lines.push(`  preferred_batch_size: [ ${preferred.join(', ')} ]`);
  lines.push(`  max_queue_delay_microseconds: ${Math.round(o.maxQueueDelayMs * 1000)}`, '}', 'instance_group [', '  {', '    kind: KIND_AUTO', '    count: 1', '  }', ']');
  return `${lines.join('\n')}\n`;
}

export interface TritonRepositoryOptions {
  /** The model's name in Triton (the directory under DIR). */
  name: string;
  graph: Graph;
  /** The compiled ONNX model and its external data (the model refers to it by `location`). */
  onnx: { model: Uint8Array; inputName: string; outputNames: string[]; externalData?: { location: string; bytes: Uint8Array } };
  /** Class names of a classifier (one output [N, classes]): written to labels.txt. */
  labels?: readonly string[];
  maxBatchSize?: number;
  maxQueueDelayMs?: number;
  /** Replace a model directory effnet did not write (refused by default). */
  force?: boolean;
}

export const TRITON_MODEL_FILE = 'model.onnx';

/** Writes DIR/<name>/{config.pbtxt, labels.txt, 1/model.onnx}; returns the files written. */
export async function writeTritonRepository(dir: string, o: TritonRepositoryOptions): Promise<string[]> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.name)) throw new InvalidSpecError('Triton model name', o.name, 'letters, digits, ".", "_" and "-"');
  const meta = graphMetadata(o.graph);
  // The ONNX model names its tensors as the graph does; the configuration must use the same names.
  const inputs = meta.inputs.map((t, i) => ({ name: i === 0 ? o.onnx.inputName : t.name, shape: t.shape }));
  const outputs = meta.outputs.map((t, i) => ({ name: o.onnx.outputNames[i] ?? t.name, shape: t.shape }));
  const classifier = outputs.length === 1 && outputs[0]!.shape.length === 2;
  if (o.labels && (!classifier || o.labels.length !== outputs[0]!.shape[1]))
    throw new InvalidSpecError('labels', `${o.labels.length} names`, `one per class of a classifier's single [N, classes] output (this model has ${outputs.map((t) => `[${t.shape.join(', ')}]`).join(', ')})`);
  const root = join(dir, o.name);
  await claimOutputDir(root, { owner: 'effnet export --triton', force: o.force, flag: '--triton' });
  const config = tritonModelConfig({
    name: o.name,
    maxBatchSize: o.maxBatchSize ?? SERVE_DEFAULTS.maxBatch,
    maxQueueDelayMs: o.maxQueueDelayMs ?? SERVE_DEFAULTS.maxDelayMs,
    inputs,
    outputs,
    ...(o.labels ? { labelOutput: outputs[0]!.name } : {}),
  });
  const files: string[] = [];
  const write = async (path: string, bytes: Uint8Array) => {
    await writeFileAtomic(path, bytes, { mkdir: true });
    files.push(path);
  };
  if (o.onnx.externalData) await write(join(root, '1', o.onnx.externalData.location), o.onnx.externalData.bytes);
  await write(join(root, '1', TRITON_MODEL_FILE), o.onnx.model);
  if (o.labels) await write(join(root, 'labels.txt'), Buffer.from(`${o.labels.join('\n')}\n`));
  await write(join(root, 'config.pbtxt'), Buffer.from(config));
  return files;
}
