import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { float32Tensor, type Graph, GraphBuilder, type LossSpec, numel, readSafetensors, seededRandom, type Tensor, type TensorMap, writeSafetensors } from '@effnet/core';
import fc from 'fast-check';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { nontrivialWeights } from '../../../testing/graphs.js';
import { describeWithPeers, maxDiff, runPython } from '../../../testing/peers.js';
import { compileTrainingGraph, type TrainingGraph } from '../src/index.js';
import { normalTensor } from './training-harness.js';

/**
 * Every loss term on a small head (a 1x1 conv, or pooling + dense for class vectors): its value and gradients
 * against central differences, and against the peers' own code (torch's cross_entropy, effdet's focal and Huber
 * losses, segmentation_models_pytorch's DiceLoss) in float64.
 */
interface LossCase {
  name: string;
  graph: Graph;
  weights: TensorMap;
  x: Tensor;
  loss: LossSpec;
  targets: Map<string, Tensor>;
}

const int64 = (shape: number[], values: number[]): Tensor => ({ dtype: 'int64', shape, data: BigInt64Array.from(values, (v) => BigInt(v)) });

function head(channels: number[], n: number, h: number, w: number, seed: number, vector = false): { graph: Graph; weights: TensorMap; x: Tensor } {
  const b = new GraphBuilder('head', [{ name: 'x', channels: 3, height: h, width: w }]);
  const outs = channels.map((c, i) =>
    vector ? b.dense(`out${i}`, b.globalAvgPool(`pool${i}`, 'x', false), 3, c) : b.conv(`out${i}`, 'x', { inChannels: 3, outChannels: c, kernel: 1, padding: { mode: 'symmetric' }, bias: true }),
  );
  const graph = b.build(outs);
  const weights = nontrivialWeights(graph, seed);
  // Spread the logits so that the losses see confident and unsure predictions.
  for (const t of weights.values()) (t.data as Float32Array).forEach((v, i, a) => (a[i] = v * 2));
  return { graph, weights, x: normalTensor([n, 3, h, w], seed + 1) };
}

const seed = fc.integer({ min: 1, max: 1_000_000 });
const geometry = fc.record({ n: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 4 }), w: fc.integer({ min: 1, max: 4 }), c: fc.integer({ min: 2, max: 5 }), seed });

const crossEntropy = fc.record({ g: geometry, smoothing: fc.constantFrom(0, 0.1), perPixel: fc.boolean() }).map(({ g, smoothing, perPixel }): LossCase => {
  const { graph, weights, x } = head([g.c], g.n, g.h, g.w, g.seed, !perPixel);
  const r = seededRandom(g.seed + 2);
  const shape = perPixel ? [g.n, g.h, g.w] : [g.n];
  // Per pixel, about one label in five is 255 (ignored).
  const labels = Array.from({ length: numel(shape) }, () => (perPixel && r() < 0.2 ? 255 : Math.floor(r() * g.c)));
  return {
    name: `cross-entropy ${perPixel ? 'per pixel, ignore 255' : 'per image'} smoothing ${smoothing} ${JSON.stringify(g)}`,
    graph,
    weights,
    x,
    loss: { targets: [{ name: 'labels', dtype: 'int64' }], terms: [{ kind: 'softmaxCrossEntropy', output: 'out0', target: 'labels', labelSmoothing: smoothing, ...(perPixel ? { ignoreIndex: 255 } : {}) }] },
    targets: new Map([['labels', int64(shape, labels)]]),
  };
});

/** Detection: focal loss on a class map plus 50 x Huber on a box map, as effdet's total. */
const detection = fc.record({ g: geometry, gamma: fc.constantFrom(1.5, 2) }).map(({ g, gamma }): LossCase => {
  const { graph, weights, x } = head([g.c, 4], g.n, g.h, g.w, g.seed);
  const r = seededRandom(g.seed + 3);
  const cls = float32Tensor([g.n, g.c, g.h, g.w], Float32Array.from({ length: g.n * g.c * g.h * g.w }, () => { const u = r(); return u < 0.15 ? 1 : u < 0.25 ? -2 : 0; }));
  const positives = (cls.data as Float32Array).filter((v) => v === 1).length;
  const box = float32Tensor([g.n, 4, g.h, g.w], Float32Array.from({ length: g.n * 4 * g.h * g.w }, () => (r() < 0.3 ? 0 : (r() - 0.5) * 0.6)));
  const mask = float32Tensor(box.shape, Float32Array.from(box.data as Float32Array, (v) => (v !== 0 ? 1 : 0)));
  return {
    name: `focal (gamma ${gamma}) + 50 Huber ${JSON.stringify(g)}`,
    graph,
    weights,
    x,
    loss: {
      targets: ['cls_targets', 'box_targets', 'box_mask', 'num_positives', 'box_normalizer'].map((name) => ({ name, dtype: 'float32' as const })),
      terms: [
        { kind: 'sigmoidFocal', output: 'out0', target: 'cls_targets', normalizer: 'num_positives', alpha: 0.25, gamma },
        { kind: 'huber', output: 'out1', target: 'box_targets', mask: 'box_mask', normalizer: 'box_normalizer', delta: 0.1, weight: 50 },
      ],
    },
    targets: new Map([
      ['cls_targets', cls],
      ['box_targets', box],
      ['box_mask', mask],
      ['num_positives', float32Tensor([1], Float32Array.of(positives + 1))],
      ['box_normalizer', float32Tensor([1], Float32Array.of(4 * (positives + 1)))],
    ]),
  };
});

const dice = fc.record({ g: geometry, smooth: fc.constantFrom(0, 1), ignore: fc.boolean() }).map(({ g, smooth, ignore }): LossCase => {
  const { graph, weights, x } = head([g.c], g.n, g.h, g.w, g.seed);
  const r = seededRandom(g.seed + 4);
  // Labels from the first classes only, so that some classes are absent (their term is zero).
  const labels = Array.from({ length: g.n * g.h * g.w }, () => (ignore && r() < 0.2 ? 255 : Math.floor(r() * Math.max(1, g.c - 1))));
  return {
    name: `dice smooth ${smooth}${ignore ? ' ignore 255' : ''} ${JSON.stringify(g)}`,
    graph,
    weights,
    x,
    loss: { targets: [{ name: 'labels', dtype: 'int64' }], terms: [{ kind: 'dice', output: 'out0', target: 'labels', smooth, ...(ignore ? { ignoreIndex: 255 } : {}) }] },
    targets: new Map([['labels', int64([g.n, g.h, g.w], labels)]]),
  };
});

const GROUPS: [string, LossCase[]][] = [
  ['softmax cross-entropy', fc.sample(crossEntropy, { seed: 5, numRuns: 8 })],
  ['sigmoid focal + Huber', fc.sample(detection, { seed: 6, numRuns: 6 })],
  ['dice', fc.sample(dice, { seed: 7, numRuns: 6 })],
];

interface Ran {
  tg: TrainingGraph;
  session: ort.InferenceSession;
  feeds: Record<string, ort.Tensor>;
  values: Map<string, Float32Array>;
}

async function runLoss(c: LossCase): Promise<Ran> {
  const tg = compileTrainingGraph(c.graph, { batch: c.x.shape[0]!, loss: c.loss, targetDims: Object.fromEntries([...c.targets].map(([k, t]) => [k, t.shape])), inputGrads: true });
  const session = await ort.InferenceSession.create(tg.model, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const io of tg.inputs) {
    const t = io.role === 'image' ? c.x : io.role === 'target' ? c.targets.get(io.name)! : c.weights.get(io.name)!;
    feeds[io.name] = new ort.Tensor(t.dtype === 'int64' ? 'int64' : 'float32', t.data as Float32Array | BigInt64Array, io.dims);
  }
  const r = await session.run(feeds);
  return { tg, session, feeds, values: new Map(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array])) };
}

describe('loss terms agree with central differences', () => {
  it.each(GROUPS)('%s', async (_name, cases) => {
    for (const [ci, c] of cases.entries()) {
      const r = await runLoss(c);
      for (const io of r.tg.outputs.filter((o) => o.role === 'grad')) {
        const base = r.feeds[io.of!]!.data as Float32Array;
        const v = normalTensor([base.length], 17 * ci + 3).data as Float32Array;
        const g = r.values.get(io.name)!;
        const analytic = g.reduce((a, gi, i) => a + gi * v[i]!, 0);
        const tries: string[] = [];
        let ok = false;
        for (const h of [1e-2, 3e-3, 1e-3]) {
          const at = async (sign: number) => {
            const moved = Float32Array.from(base, (b, i) => b + sign * h * v[i]!);
            const out = await r.session.run({ ...r.feeds, [io.of!]: new ort.Tensor('float32', moved, [...r.feeds[io.of!]!.dims]) });
            return (out.loss!.data as Float32Array)[0]!;
          };
          const fd = ((await at(1)) - (await at(-1))) / (2 * h);
          tries.push(`h ${h}: ${fd.toPrecision(6)} vs ${analytic.toPrecision(6)}`);
          if (Math.abs(fd - analytic) <= 2e-2 * Math.max(Math.abs(fd), Math.abs(analytic)) + 1e-3) {
            ok = true;
            break;
          }
        }
        expect(ok, `${c.name}: d loss / d ${io.of}: ${tries.join('; ')}`).toBe(true);
      }
      await r.session.release();
    }
  });
});

describeWithPeers(['torch', 'effdet', 'segmentation_models_pytorch'], 'loss terms agree with the peers (float64)', () => {
  const results = new Map<LossCase, { ours: Map<string, Float32Array>; torch: TensorMap }>();
  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), 'effnet-loss-'));
    const dirs: [LossCase, Map<string, Float32Array>, string][] = [];
    for (const [, cases] of GROUPS)
      for (const c of cases) {
        const r = await runLoss(c);
        await r.session.release();
        const dir = join(root, String(dirs.length));
        mkdirSync(dir);
        const tensors: TensorMap = new Map(c.weights);
        tensors.set('input:x', c.x);
        for (const [k, t] of c.targets) tensors.set(`target:${k}`, t);
        await writeSafetensors(join(dir, 'tensors.safetensors'), tensors);
        writeFileSync(join(dir, 'graph.json'), JSON.stringify(c.graph));
        writeFileSync(join(dir, 'meta.json'), JSON.stringify({ trainBatchNorm: true, loss: c.loss }));
        dirs.push([c, r.values, dir]);
      }
    runPython('scripts/torch_graph_grad.py', dirs.map(([, , d]) => d));
    for (const [c, ours, dir] of dirs) results.set(c, { ours, torch: (await readSafetensors(join(dir, 'result.safetensors'))).tensors });
  });

  it.each(GROUPS)('%s', (name, cases) => {
    let worst = 0;
    for (const c of cases) {
      const { ours, torch } = results.get(c)!;
      for (const [key, t] of torch) {
        if (key.startsWith('out:') || key.startsWith('new:')) continue;
        const want = t.data as Float32Array;
        const got = ours.get(key) ?? new Float32Array(want.length);
        const { diff, scale } = maxDiff(got, want);
        worst = Math.max(worst, diff / Math.max(scale, 1e-3));
        expect(diff, `${c.name}: ${key} (max|torch| ${scale.toExponential(2)})`).toBeLessThanOrEqual(1e-5 * Math.max(scale, 1e-2));
      }
    }
    console.info(`${name}: worst max|ours - peer| / max|peer| = ${worst.toExponential(2)}`);
  });
});
