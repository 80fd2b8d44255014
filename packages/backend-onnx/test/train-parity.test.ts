import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, type Graph, type OptimizerConfig, readSafetensors, specFor, type Tensor, type TensorMap, toTorchvision, writeNpy, writeSafetensors } from '@effnet/core';
import { beforeAll, expect, it } from 'vitest';
import { nontrivialWeights, randomInput } from '../../../testing/graphs.js';
import { describeWithPeers, runPython } from '../../../testing/peers.js';
import { compareSteps } from '../../../testing/training.js';
import { OnnxBackend } from '../src/index.js';

interface Case {
  model: 'phi-3' | 'efficientnet_b0' | 'tf_efficientnetv2_b0';
  optimizer: OptimizerConfig;
  steps: number;
  clipGradNorm?: number;
}

const CLASSES = 5;
const RES = 64;

interface Prepared {
  c: Case;
  dir: string;
  graph: Graph;
  w: TensorMap;
  names: (m: TensorMap) => TensorMap;
  x: Tensor;
  labels: Int32Array;
}

/** Writes a case's weights and batch and the arguments of its PyTorch run (scripts/torch_train_step.py). */
async function prepare(c: Case): Promise<{ p: Prepared; args: string[] }> {
  // torchvision's models (phi-3, and B0 = phi 0) under torchvision's names; timm's under timm's.
  const timm = c.model.startsWith('tf_');
  const spec = { ...specFor(timm ? c.model : c.model === 'phi-3' ? 'efficientnet_phi-3' : c.model, timm ? {} : { family: 'torchvision' }), dropout: 0, dropPathRate: 0 };
  const graph = buildEfficientNet(spec, { numClasses: CLASSES, inputResolution: RES });
  const w = nontrivialWeights(graph, 3);
  // torchvision names for torchvision's model; timm's names are ours.
  const names = (m: TensorMap) => (timm ? m : toTorchvision(spec, m));
  const dir = mkdtempSync(join(tmpdir(), 'effnet-onnx-trainstep-'));
  await writeSafetensors(join(dir, 'weights.safetensors'), names(w));
  const x = randomInput([6, 3, RES, RES], 9);
  const labels = Int32Array.from([0, 1, 2, 3, 4, 0]);
  await writeNpy(join(dir, 'input.npy'), x);
  await writeNpy(join(dir, 'labels.npy'), { dtype: 'int64', shape: [6], data: BigInt64Array.from(labels, (l) => BigInt(l)) });
  const bn = graph.nodes.find((n) => n.kind === 'batchNorm')!;
  const o = c.optimizer;
  const extras = {
    ...(o.kind === 'sgd' ? { momentum: o.momentum ?? 0, nesterov: o.nesterov ?? false } : {}),
    weightDecay: o.weightDecay ?? 0,
    ...(c.clipGradNorm !== undefined ? { clipGradNorm: c.clipGradNorm } : {}),
    ...(bn.kind === 'batchNorm' ? { bnMomentum: bn.momentum } : {}),
  };
  const args = [dir, timm ? `timm:${c.model}` : c.model === 'phi-3' ? '-3' : '0', String(CLASSES), String(o.lr), o.kind, String(c.steps), JSON.stringify(extras)];
  return { p: { c, dir, graph, w, names, x, labels }, args };
}

/** Our steps from the same weights and batch, compared with torch's. */
async function compare(p: Prepared, nchwc?: boolean) {
  const { c } = p;
  const torch = JSON.parse(readFileSync(join(p.dir, 'result.json'), 'utf8')) as { losses: number[]; gradNorms: number[] };
  const after = (await readSafetensors(join(p.dir, 'after.safetensors'))).tensors;
  const session = await new OnnxBackend().createTrainer(p.graph, p.w, {
    optimizer: c.optimizer,
    labelSmoothing: 0.1,
    threads: 2,
    ...(c.clipGradNorm !== undefined ? { clipGradNorm: c.clipGradNorm } : {}),
    ...(nchwc !== undefined ? { nchwc } : {}),
  });
  const ours: number[] = [];
  const norms: number[] = [];
  for (let s = 0; s < c.steps; s++) {
    const r = await session.step(p.x, p.labels);
    ours.push(r.loss);
    norms.push(r.gradNorm);
  }
  const mine = p.names(session.weights());
  const notes = session.notes.join('; ');
  session.dispose();
  const { worst, off, moved } = compareSteps(mine, after, p.names(p.w));
  const tag = `${c.model} ${c.optimizer.kind}${nchwc === false ? ' (standard ops)' : ''}`;
  console.info(`${tag}: losses torch ${torch.losses.map((l) => l.toFixed(6))} ours ${ours.map((l) => l.toFixed(6))}; grad norms torch ${torch.gradNorms.map((l) => l.toFixed(5))} ours ${norms.map((l) => l.toFixed(5))}`);
  console.info(`${tag}: worst tensor ${worst.name}: max|diff| ${worst.diff.toExponential(2)} (max|w| ${worst.scale.toExponential(2)}); sum|ours - torch| / sum|torch update| = ${(off / moved).toExponential(2)}${notes ? `; ${notes}` : ''}`);
  return { torch, ours, norms, worst, off, moved };
}

const ONE_STEP: Case[] = [
  { model: 'phi-3', optimizer: { kind: 'sgd', lr: 0.01 }, steps: 1 },
  { model: 'phi-3', optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }, steps: 2, clipGradNorm: 0.5 },
  { model: 'efficientnet_b0', optimizer: { kind: 'sgd', lr: 0.01 }, steps: 1 },
  { model: 'tf_efficientnetv2_b0', optimizer: { kind: 'sgd', lr: 0.01 }, steps: 1 },
];
const ADAM: Case[] = [
  { model: 'phi-3', optimizer: { kind: 'adamw', lr: 1e-3, weightDecay: 0.01 }, steps: 3 },
  { model: 'phi-3', optimizer: { kind: 'adam', lr: 1e-3, weightDecay: 1e-4 }, steps: 3 },
  { model: 'efficientnet_b0', optimizer: { kind: 'adamw', lr: 1e-3, weightDecay: 0.01 }, steps: 3 },
  { model: 'tf_efficientnetv2_b0', optimizer: { kind: 'adamw', lr: 1e-3, weightDecay: 0.01 }, steps: 3 },
];

describeWithPeers(['torch', 'torchvision', 'timm'], 'ONNX Runtime training steps vs PyTorch', () => {
  const prepared = new Map<Case, Prepared>();
  beforeAll(async () => {
    const runs: string[][] = [];
    for (const c of [...ONE_STEP, ...ADAM]) {
      const { p, args } = await prepare(c);
      prepared.set(c, p);
      runs.push(args);
    }
    const list = join(mkdtempSync(join(tmpdir(), 'effnet-onnx-trainstep-')), 'runs.json');
    writeFileSync(list, JSON.stringify(runs));
    runPython('scripts/torch_train_step.py', ['--many', list]);
  });

  it.each(ONE_STEP.map((c): [string, Case] => [`${c.model} ${c.optimizer.kind}${c.clipGradNorm ? ' + clipping' : ''}, ${c.steps} step(s)`, c]))('%s: equals torch to 1e-4', async (_name, c) => {
    // The first case also runs on standard operators only (no NCHWc kernels).
    for (const nchwc of c === ONE_STEP[0] ? [undefined, false] : [undefined]) {
      const r = await compare(prepared.get(c)!, nchwc);
      for (let s = 0; s < c.steps; s++) {
        expect(Math.abs(r.ours[s]! - r.torch.losses[s]!)).toBeLessThan(1e-4 * Math.max(1, r.torch.losses[s]!));
        expect(Math.abs(r.norms[s]! - r.torch.gradNorms[s]!)).toBeLessThan(1e-4 * r.torch.gradNorms[s]!);
      }
      expect(r.worst.diff).toBeLessThanOrEqual(1e-4 * Math.max(1, r.worst.scale));
    }
  });

  it.each(ADAM.map((c): [string, Case] => [`${c.model} ${c.optimizer.kind}`, c]))('%s: three steps follow torch', async (_name, c) => {
    // As the tfjs parity test: Adam moves a parameter whose gradient is float32 noise by about lr, in a direction
    // the noise decides, so the trajectory is compared as a whole.
    const r = await compare(prepared.get(c)!);
    expect(Math.abs(r.ours[0]! - r.torch.losses[0]!)).toBeLessThan(1e-4 * r.torch.losses[0]!);
    for (let s = 1; s < c.steps; s++) expect(Math.abs(r.ours[s]! - r.torch.losses[s]!)).toBeLessThan(5e-2 * r.torch.losses[s]!);
    expect(r.off / r.moved).toBeLessThan(0.02);
  });
});
