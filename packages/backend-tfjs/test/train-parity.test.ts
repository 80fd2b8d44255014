import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, readSafetensors, specFor, toTorchvision, writeNpy, writeSafetensors } from '@effnet/core';
import { nontrivialWeights, randomInput } from '../../../testing/graphs.js';
import { expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../testing/peers.js';
import { compareSteps } from '../../../testing/training.js';
import { TfjsBackend } from '../src/index.js';

describeWithPeers(['torch', 'torchvision'], 'tfjs training steps vs PyTorch', () => {
  it.each([
    ['sgd', 0.01, 1],
    ['adamw', 1e-3, 3],
  ] as const)('%s (lr %s, %s steps): losses and updated weights, BN running statistics included, match torch', async (opt, lr, steps) => {
    const phi = -3;
    const classes = 5;
    const spec = { ...specFor(`efficientnet_phi${phi}`), dropout: 0, dropPathRate: 0 };
    const graph = buildEfficientNet(spec, { numClasses: classes, inputResolution: 32 });
    const w = nontrivialWeights(graph, 3);
    const dir = mkdtempSync(join(tmpdir(), 'effnet-trainstep-'));
    await writeSafetensors(join(dir, 'weights.safetensors'), toTorchvision(spec, w));
    const x = randomInput([6, 3, 32, 32], 9);
    const labels = Int32Array.from([0, 1, 2, 3, 4, 0]);
    await writeNpy(join(dir, 'input.npy'), x);
    await writeNpy(join(dir, 'labels.npy'), { dtype: 'int64', shape: [6], data: BigInt64Array.from([...labels].map(BigInt)) });
    runPython('scripts/torch_train_step.py', [dir, String(phi), String(classes), String(lr), opt, String(steps)]);
    const torchLosses = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'result.json'), 'utf8')).losses as number[];
    const after = (await readSafetensors(join(dir, 'after.safetensors'))).tensors;

    const session = await new TfjsBackend().createTrainer(graph, w, {
      optimizer: opt === 'sgd' ? { kind: 'sgd', lr } : { kind: 'adamw', lr, weightDecay: 0.01 },
      labelSmoothing: 0.1,
      device: 'wasm',
    });
    const ours: number[] = [];
    for (let s = 0; s < steps; s++) ours.push((await session.step(x, labels)).loss);
    const mine = toTorchvision(spec, session.weights());
    session.dispose();
    console.info(`${opt}: losses torch ${torchLosses.map((l) => l.toFixed(5))} ours ${ours.map((l) => l.toFixed(5))}`);
    const { worst, off, moved } = compareSteps(mine, after, toTorchvision(spec, w));
    console.info(`${opt}: worst tensor ${worst.name}: max|diff| ${worst.diff.toExponential(2)}; total |ours - torch| / total |torch update| = ${(off / moved).toExponential(2)}`);
    if (opt === 'sgd') {
      // SGD is linear in the gradient: float32 agreement throughout.
      for (let s = 0; s < steps; s++) expect(Math.abs(ours[s]! - torchLosses[s]!)).toBeLessThan(1e-4 * Math.max(1, torchLosses[s]!));
      expect(worst.diff).toBeLessThanOrEqual(1e-4 * Math.max(1, worst.scale));
    } else {
      // Adam divides by sqrt(v) + 1e-8: a parameter whose gradient is float32 noise moves by about lr in either
      // framework, in a direction the noise decides. So compare the trajectory as a whole.
      expect(Math.abs(ours[0]! - torchLosses[0]!)).toBeLessThan(1e-4 * torchLosses[0]!);
      for (let s = 1; s < steps; s++) expect(Math.abs(ours[s]! - torchLosses[s]!)).toBeLessThan(5e-2 * torchLosses[s]!);
      expect(off / moved).toBeLessThan(0.02);
    }
  });
});
