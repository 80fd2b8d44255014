import { OnnxBackend } from '@effnet/backend-onnx';
import type { TensorMap } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { nontrivialWeights, randomInput, sharedHead } from '../../../testing/graphs.js';
import { maxDiff } from '../../../testing/peers.js';
import { selectRuntime, tf, TfjsBackend, TfjsModel, toNhwc } from '../src/index.js';

/** Parameters read by several nodes (a detection head shared across levels) on tfjs: one variable, summed gradients. */
describe('shared parameters on tfjs', () => {
  it('run as on ONNX Runtime, folded and unfolded', async () => {
    const g = sharedHead(16);
    const w = nontrivialWeights(g);
    const x = randomInput([2, 3, 40, 56]);
    const onnx = await new OnnxBackend().load(g, w, { threads: 2 });
    const want = await onnx.run(x);
    await onnx.dispose();
    for (const foldBatchNorm of [true, false]) {
      const r = await new TfjsBackend().load(g, w, { device: 'wasm', foldBatchNorm });
      const got = await r.run(x);
      r.dispose();
      for (const name of g.outputs) {
        const { diff, scale } = maxDiff(got[name]!.data as Float32Array, want[name]!.data as Float32Array);
        expect(diff, `${name} fold=${foldBatchNorm}`).toBeLessThanOrEqual(1e-5 * scale);
      }
    }
  });

  it('get the sum of every reader\'s gradient (the same network with a copy per level, summed)', async () => {
    await selectRuntime('wasm');
    const shared = sharedHead(8);
    const copies = sharedHead(8, false);
    const w = nontrivialWeights(shared);
    const wCopies: TensorMap = new Map();
    for (const p of copies.parameters) wCopies.set(p.name, w.get(p.name.replace(/^head\d\./, 'head.'))!);
    const a = new TfjsModel(shared, w);
    const b = new TfjsModel(copies, wCopies);
    expect(a.variables.size).toBe(shared.parameters.length);
    const x = toNhwc(randomInput([2, 3, 32, 32]));
    // A loss that weighs every output differently, so each level's gradient differs.
    const grads = (m: TfjsModel) =>
      tf.variableGrads(() => {
        const outs = Object.values(m.forward(x).outputs);
        return tf.addN(outs.map((o, i) => tf.sum(tf.mul(o, tf.sin(tf.add(tf.range(0, o.size).reshape(o.shape), i)))))) as ReturnType<typeof tf.scalar>;
      }).grads;
    const ga = grads(a);
    const gb = grads(b);
    for (const name of ['head.conv_dw.weight', 'head.conv_pw.weight', 'head.conv_pw.bias', 'head.predict.weight', 'head.predict.bias']) {
      const got = ga[a.variables.get(name)!.name]!;
      const sum = tf.addN([0, 1, 2, 3, 4].map((l) => gb[b.variables.get(name.replace('head.', `head${l}.`))!.name]!));
      const { diff, scale } = maxDiff(got.dataSync() as Float32Array, sum.dataSync() as Float32Array);
      expect(scale, name).toBeGreaterThan(0);
      expect(diff, name).toBeLessThanOrEqual(1e-5 * scale);
    }
    for (const t of [...Object.values(ga), ...Object.values(gb), x]) t.dispose();
    a.dispose();
    b.dispose();
  });
});
