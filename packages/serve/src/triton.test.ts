/**
 * The Triton configuration effnet writes, parsed against Triton's own schema (model_config.proto, vendored under
 * test/fixtures/triton) with protobufjs' text-format parser: an unknown field, enum value or a value of the wrong type
 * is a parse error, so every name, enum and type in the generated config.pbtxt is checked.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileToOnnx } from '@effnet/backend-onnx';
import { labelsOrIndices, loadModelWeights } from '@effnet/tasks';
import { fc, test } from '@fast-check/vitest';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import textformat from 'protobufjs/ext/textformat.js';
import { describe, expect, it } from 'vitest';
import { preferredBatchSizes, tritonModelConfig, writeTritonRepository } from './triton.js';

const PROTO = fileURLToPath(new URL('../test/fixtures/triton/model_config.proto', import.meta.url));
const ModelConfig = new protobuf.Root().loadSync(PROTO, { keepCase: true }).lookupType('inference.ModelConfig');

/** The config as Triton reads it: parsed against the schema, enums as names, 64-bit integers as numbers. */
function parseConfig(text: string): Record<string, unknown> {
  return ModelConfig.toObject(textformat.fromText(ModelConfig, text), { enums: String, longs: Number }) as Record<string, unknown>;
}

describe('the schema check itself', () => {
  it('rejects unknown fields, unknown enum values, wrong types and two scheduling choices', () => {
    expect(() => parseConfig('max_batch_sizes: 4')).toThrow(/unknown field/);
    expect(() => parseConfig('input [ { data_type: TYPE_FLOAT32 } ]')).toThrow(/enum value expected/);
    expect(() => parseConfig('max_batch_size: "8"')).toThrow(/integer value expected/);
    expect(() => parseConfig('dynamic_batching {} sequence_batching {}')).toThrow(/multiple values/);
  });
});

describe('tritonModelConfig', () => {
  it('writes the onnxruntime backend, dims without the batch, dynamic batching and the label file', () => {
    const text = tritonModelConfig({
      name: 'effnet-shapes',
      maxBatchSize: 16,
      maxQueueDelayMs: 5,
      inputs: [{ name: 'input', shape: [-1, 3, 48, 48] }],
      outputs: [{ name: 'logits', shape: [-1, 6] }],
      labelOutput: 'logits',
    });
    expect(parseConfig(text)).toEqual({
      name: 'effnet-shapes',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 16,
      input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [3, 48, 48] }],
      output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [6], label_filename: 'labels.txt' }],
      dynamic_batching: { preferred_batch_size: [2, 4, 8, 16], max_queue_delay_microseconds: 5000 },
      instance_group: [{ kind: 'KIND_AUTO', count: 1 }],
    });
  });

  const dim = fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: 4096 }));
  const tensor = (rank: number) =>
    fc.record({ name: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.:/-]{0,20}$/), shape: fc.array(dim, { minLength: rank, maxLength: rank }).map((s) => [-1, ...s]) });
  test.prop([
    fc.record({
      name: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$/),
      maxBatchSize: fc.integer({ min: 1, max: 1024 }),
      maxQueueDelayMs: fc.double({ min: 0, max: 1000, noNaN: true }),
      inputs: fc.array(tensor(3), { minLength: 1, maxLength: 2 }),
      outputs: fc.array(fc.integer({ min: 1, max: 4 }).chain(tensor), { minLength: 1, maxLength: 5 }),
    }),
  ])('every generated config parses against model_config.proto and says what it was given', (o) => {
    const c = parseConfig(tritonModelConfig(o)) as {
      name: string;
      max_batch_size: number;
      input: { name: string; dims: number[] }[];
      output: { name: string; dims: number[] }[];
      dynamic_batching: { preferred_batch_size?: number[]; max_queue_delay_microseconds?: number };
    };
    expect(c.name).toBe(o.name);
    expect(c.max_batch_size).toBe(o.maxBatchSize);
    expect(c.input.map((t) => [t.name, t.dims])).toEqual(o.inputs.map((t) => [t.name, t.shape.slice(1)]));
    expect(c.output.map((t) => [t.name, t.dims])).toEqual(o.outputs.map((t) => [t.name, t.shape.slice(1)]));
    expect(c.dynamic_batching.preferred_batch_size ?? []).toEqual(preferredBatchSizes(o.maxBatchSize));
    expect(c.dynamic_batching.max_queue_delay_microseconds ?? 0).toBe(Math.round(o.maxQueueDelayMs * 1000));
    expect(preferredBatchSizes(o.maxBatchSize).every((b) => b <= o.maxBatchSize)).toBe(true);
  });
});

describe('writeTritonRepository', () => {
  it('writes DIR/<name>/1/model.onnx, config.pbtxt and labels.txt that fit together', async () => {
    const m = await loadModelWeights('effnet-shapes');
    const compiled = compileToOnnx(m.graph, m.weights, { externalDataLocation: 'model.onnx.data' });
    const dir = mkdtempSync(join(tmpdir(), 'effnet-triton-'));
    const files = await writeTritonRepository(dir, { name: 'effnet-shapes', graph: m.graph, onnx: compiled, labels: labelsOrIndices(m.labels!, 6) });
    expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual(['effnet-shapes/1/model.onnx', 'effnet-shapes/config.pbtxt', 'effnet-shapes/labels.txt']);
    const config = parseConfig(readFileSync(join(dir, 'effnet-shapes', 'config.pbtxt'), 'utf8')) as { input: { name: string; dims: number[] }[]; output: { name: string; dims: number[]; label_filename: string }[] };
    const labels = readFileSync(join(dir, 'effnet-shapes', 'labels.txt'), 'utf8').trimEnd().split('\n');
    expect(labels).toEqual(['circle', 'cross', 'ring', 'square', 'star', 'triangle']);
    expect(config.output[0]!.dims).toEqual([labels.length]);
    // The ONNX model takes what the config says, with any batch size (Triton stacks requests on dimension 0).
    const session = await ort.InferenceSession.create(join(dir, 'effnet-shapes', '1', 'model.onnx'));
    expect(session.inputNames).toEqual(config.input.map((t) => t.name));
    expect(session.outputNames).toEqual(config.output.map((t) => t.name));
    const x = new ort.Tensor('float32', new Float32Array(3 * 3 * 48 * 48).fill(0.1), [3, ...config.input[0]!.dims]);
    const out = await session.run({ [session.inputNames[0]!]: x });
    expect(out[session.outputNames[0]!]!.dims).toEqual([3, ...config.output[0]!.dims]);
    await session.release();
  });

  it('does not write over a model directory it did not make, unless forced; checks the labels fit', async () => {
    const m = await loadModelWeights('effnet-shapes');
    const compiled = compileToOnnx(m.graph, m.weights);
    const dir = mkdtempSync(join(tmpdir(), 'effnet-triton-'));
    await mkdir(join(dir, 'shapes'));
    writeFileSync(join(dir, 'shapes', 'notes.txt'), 'mine');
    await expect(writeTritonRepository(dir, { name: 'shapes', graph: m.graph, onnx: compiled })).rejects.toThrow(/--triton .*shapes already holds notes\.txt/);
    await expect(writeTritonRepository(dir, { name: 'shapes', graph: m.graph, onnx: compiled, labels: ['a', 'b'] })).rejects.toThrow(/labels.*one per class/);
    expect(await writeTritonRepository(dir, { name: 'shapes', graph: m.graph, onnx: compiled, force: true })).toHaveLength(2);
  });
});
