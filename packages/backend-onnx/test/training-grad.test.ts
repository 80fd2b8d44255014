import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { float32Tensor, NODE_KINDS, type NodeKind, readSafetensors, type TensorMap, writeSafetensors } from '@effnet/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { everyKind } from '../../../testing/graphs.js';
import { describeWithPeers, maxDiff, runPython } from '../../../testing/peers.js';
import { planNchwc, probeNchwc } from '../src/index.js';
import { CASES, compositeCases, nchwcDepthwise } from './grad-cases.js';
import { directional, type GradCase, masksFor, seededObjective, vjp, type VjpResult } from './training-harness.js';

/**
 * Every node kind's backward rule, on small graphs drawn by fast-check (shapes, strides, groups, dilations, the
 * three padding modes): against central differences of our own forward, and against PyTorch autograd in float64.
 */
const RUNS = 5;
const byKind = new Map<NodeKind, GradCase[]>(NODE_KINDS.map((k, i) => [k, fc.sample(CASES[k], { seed: 1000 + i, numRuns: RUNS })]));
const composites = compositeCases({ everyKind });
const groups: [string, GradCase[]][] = [...[...byKind].map(([k, c]): [string, GradCase[]] => [k, c]), ['composite', composites]];

/** Parameters and image inputs whose gradient the graph computes. */
const differentiated = (r: VjpResult) => r.tg.outputs.filter((o) => o.role === 'grad').map((o) => o.of!);

describe('backward rules agree with central differences of the forward', () => {
  // Composites are left to the float64 PyTorch check: with a dozen piecewise-linear nodes a kink lies within 1e-4
  // of most points (torch's own float64 differences only converge below that), out of float32's reach.
  it.each([...byKind])('%s', async (_kind, cases) => {
    for (const [ci, c] of cases.entries()) {
      const r = await vjp(c, ci);
      try {
        for (const [ti, t] of differentiated(r).entries()) {
          // float32 central differences: large steps straddle kinks, small ones drown in rounding. A correct rule
          // matches at one of three steps; a wrong one at none.
          const tries: string[] = [];
          let ok = false;
          for (const step of [3e-2, 1e-2, 3e-3]) {
            const { fd, analytic } = await directional(r, t, 31 * ci + ti, step);
            tries.push(`step ${step}: ${fd.toPrecision(6)} vs ${analytic.toPrecision(6)}`);
            if (Math.abs(fd - analytic) <= 2e-2 * Math.max(Math.abs(fd), Math.abs(analytic)) + 1e-3) {
              ok = true;
              break;
            }
          }
          expect(ok, `${c.name}: d/d${t}: finite differences vs backward: ${tries.join('; ')}`).toBe(true);
        }
      } finally {
        await r.session.release();
      }
    }
  });
});

describe('NCHWc depthwise formulations equal the standard ones', () => {
  it('forward, input gradient (stride 1) and weight gradient', async () => {
    const block = await probeNchwc(1);
    if (block === null) {
      console.warn('skipping: this onnxruntime build has no NCHWc kernels');
      return;
    }
    for (const [ci, c] of fc.sample(nchwcDepthwise, { seed: 77, numRuns: 8 }).entries()) {
      const plain = await vjp(c, ci);
      const fast = await vjp(c, ci, { nchwc: planNchwc(c.graph, block) });
      expect(new TextDecoder().decode(fast.tg.model)).toContain('com.microsoft.nchwc');
      for (const [k, want] of plain.values) {
        const { diff, scale } = maxDiff(fast.values.get(k)!, want);
        expect(diff, `${c.name}: ${k}`).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      }
      await plain.session.release();
      await fast.session.release();
    }
  });
});

describeWithPeers(['torch'], 'backward rules agree with PyTorch autograd (float64)', () => {
  const root = mkdtempSync(join(tmpdir(), 'effnet-grad-'));
  const results = new Map<GradCase, { ours: Map<string, Float32Array>; torch: TensorMap }>();
  beforeAll(async () => {
    const dirs: string[] = [];
    const ours: [GradCase, Map<string, Float32Array>, string][] = [];
    for (const [, cases] of groups)
      for (const [ci, c] of cases.entries()) {
        const r = await vjp(c, ci);
        const dir = join(root, String(dirs.length));
        mkdirSync(dir);
        const tensors: TensorMap = new Map(c.weights);
        for (const [name, t] of c.inputs) tensors.set(`input:${name}`, t);
        for (const [o, s] of r.seeds) tensors.set(`seed:${o}`, float32Tensor(r.tg.outputs.find((x) => x.name === o)!.dims, s));
        for (const [m, v] of masksFor(r.tg, ci + 11)) tensors.set(m, float32Tensor(r.tg.masks.find((x) => x.name === m)!.dims, v));
        await writeSafetensors(join(dir, 'tensors.safetensors'), tensors);
        writeFileSync(join(dir, 'graph.json'), JSON.stringify(c.graph));
        writeFileSync(join(dir, 'meta.json'), JSON.stringify({ trainBatchNorm: c.trainBatchNorm }));
        dirs.push(dir);
        // Our graph returns the batch statistics; the running averages follow as the trainer computes them.
        const values = new Map(r.values);
        values.set('loss', Float32Array.of(seededObjective(r.values, r.seeds)));
        for (const [stat, m] of r.tg.momentum) {
          const old = c.weights.get(stat)!.data as Float32Array;
          const batch = r.values.get(`stat:${stat}`)!;
          values.set(`new:${stat}`, Float32Array.from(old, (v, i) => (1 - m) * v + m * batch[i]!));
        }
        ours.push([c, values, dir]);
        await r.session.release();
      }
    runPython('scripts/torch_graph_grad.py', dirs);
    for (const [c, values, dir] of ours) results.set(c, { ours: values, torch: (await readSafetensors(join(dir, 'result.safetensors'))).tensors });
  });
  afterAll(() => undefined);

  it.each(groups)('%s', (kind, cases) => {
    let worst = { ratio: 0, what: '' };
    for (const c of cases) {
      const { ours, torch } = results.get(c)!;
      for (const [name, t] of torch) {
        const key = name.startsWith('out:') ? name.slice(4) : name;
        const want = t.data as Float32Array;
        // A tensor we give no gradient (an input only read for its size) must get none from torch either.
        const got = ours.get(key) ?? (name.startsWith('grad:') ? new Float32Array(want.length) : undefined);
        if (!got) throw new Error(`${c.name}: no ${key} in our results`);
        const { diff, scale } = maxDiff(got, want);
        const tol = 5e-6 * Math.max(scale, 1);
        if (diff / Math.max(scale, 1) > worst.ratio) worst = { ratio: diff / Math.max(scale, 1), what: `${c.name} ${key}` };
        if (!(diff <= tol)) throw new Error(`${c.name}: ${key}: max|ours - torch| ${diff.toExponential(2)}, max|torch| ${scale.toExponential(2)}`);
        expect(diff).toBeLessThanOrEqual(tol);
      }
    }
    console.info(`${kind}: worst max|ours - torch| / max(1, max|torch|) = ${worst.ratio.toExponential(2)} (${worst.what})`);
  });
});
