import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, specFor } from '@effnet/core';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { nontrivialWeights, randomInput } from '../../../testing/graphs.js';
import { describeWithPeers, runPython } from '../../../testing/peers.js';
import { compileToOnnx, OnnxCompileError, type OnnxGraphExtension, type OnnxGraphInfo } from '../src/index.js';

const graph = buildEfficientNet(specFor('efficientnet_b0'), { numClasses: 10, inputResolution: 64 });
const weights = nontrivialWeights(graph);
const x = randomInput([2, 3, 64, 64]);

/** Softmax and the best class appended to the classifier's logits: a generic extension, as a task would write one. */
function top1(info: OnnxGraphInfo): OnnxGraphExtension {
  const logits = info.outputs[0]!.name;
  return {
    nodes: [
      { opType: 'Softmax', name: 'post/softmax', inputs: [logits], outputs: ['probs'], attributes: { axis: 1 } },
      { opType: 'ArgMax', name: 'post/argmax', inputs: ['probs'], outputs: ['best'], attributes: { axis: 1, keepdims: 0 } },
      { opType: 'Mul', name: 'post/scale', inputs: ['probs', 'post/hundred'], outputs: ['percent'] },
    ],
    initializers: [{ name: 'post/hundred', dataType: 1, dims: [], raw: new Uint8Array(Float32Array.of(100).buffer) }],
    outputs: [
      { name: 'percent', elemType: 1, shape: ['batch', 10] },
      { name: 'best', elemType: 7, shape: ['batch'] },
    ],
    metadata: { 'post.kind': 'top1' },
    docString: 'softmax and argmax appended',
  };
}

async function session(model: Uint8Array) {
  return ort.InferenceSession.create(model, { intraOpNumThreads: 2 });
}

describe('compileToOnnx extend', () => {
  it("appends the hook's nodes after the graph: its outputs replace the graph's, or join them with keepGraphOutputs", async () => {
    const plain = compileToOnnx(graph, weights);
    const logits = (await (await session(plain.model)).run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) })).logits!.data as Float32Array;
    let seen: OnnxGraphInfo | undefined;
    const c = compileToOnnx(graph, weights, { extend: (info) => ((seen = info), top1(info)) });
    expect(seen).toMatchObject({ opset: 17, input: { name: 'input', shape: ['batch', 3, 64, 64] }, outputs: [{ name: 'logits', elemType: 1, shape: ['batch', 10] }] });
    expect(seen!.names.has('logits')).toBe(true);
    expect(c.outputNames).toEqual(['percent', 'best']);
    const s = await session(c.model);
    expect(s.outputNames).toEqual(['percent', 'best']);
    const out = await s.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
    for (let b = 0; b < 2; b++) {
      const row = logits.subarray(b * 10, b * 10 + 10);
      const best = row.indexOf(Math.max(...row));
      expect(Number((out.best!.data as BigInt64Array)[b])).toBe(best);
      const p = (out.percent!.data as Float32Array).subarray(b * 10, b * 10 + 10);
      expect(p.reduce((a, v) => a + v, 0)).toBeCloseTo(100, 3);
    }
    const both = compileToOnnx(graph, weights, { extend: (info) => ({ ...top1(info), keepGraphOutputs: true }), fp16: true });
    expect(both.outputNames).toEqual(['logits', 'percent', 'best']);
    expect((await session(both.model)).outputNames).toEqual(['logits', 'percent', 'best']);
  });

  it('refuses names that clash with the graph or repeat, and outputs nothing produces', () => {
    const clash = (info: OnnxGraphInfo): OnnxGraphExtension => ({ ...top1(info), nodes: [{ opType: 'Identity', name: 'x', inputs: ['logits'], outputs: ['logits'] }] });
    expect(() => compileToOnnx(graph, weights, { extend: clash })).toThrow(OnnxCompileError);
    expect(() => compileToOnnx(graph, weights, { extend: clash })).toThrow(/tensor "logits" is already defined/);
    const twice = (info: OnnxGraphInfo): OnnxGraphExtension => ({ ...top1(info), initializers: [...top1(info).initializers, ...top1(info).initializers] });
    expect(() => compileToOnnx(graph, weights, { extend: twice })).toThrow(/"post\/hundred" is already defined/);
    const orphan = (info: OnnxGraphInfo): OnnxGraphExtension => ({ ...top1(info), outputs: [{ name: 'nowhere', elemType: 1, shape: [1] }] });
    expect(() => compileToOnnx(graph, weights, { extend: orphan })).toThrow(/output "nowhere" is produced by none of its nodes/);
  });
});

describeWithPeers(['onnx'], 'an extended model and the ONNX checker', () => {
  it('passes onnx.checker with full_check, metadata and doc string included', () => {
    const c = compileToOnnx(graph, weights, { extend: top1 });
    const file = join(mkdtempSync(join(tmpdir(), 'effnet-extend-')), 'm.onnx');
    writeFileSync(file, c.model);
    expect(runPython('scripts/onnx_check.py', [file])).toMatch(/^ok opset 17/);
    const text = Buffer.from(c.model).toString('latin1');
    expect(text).toContain('post.kind');
    expect(text).toContain('softmax and argmax appended');
  });
});
