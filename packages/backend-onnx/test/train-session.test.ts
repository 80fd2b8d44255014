import { buildEfficientNet, compound, getBackend, InvalidSpecError, learningRate, randomWeights, selectTrainable, canTrain, type Tensor } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { countCorrect, nontrivialWeights, randomInput, textureBatch } from '../../../testing/graphs.js';
import { maxDiff } from '../../../testing/peers.js';
import { DeviceUnavailableError, InputError, OnnxBackend, type OnnxTrainerOptions } from '../src/index.js';

const CLASSES = 4;
const { spec } = compound({ phi: -3 });
const backend = new OnnxBackend();

function small(res = 32, rates = { dropout: 0.3, dropPathRate: 0.3 }) {
  const graph = buildEfficientNet({ ...spec, ...rates }, { numClasses: CLASSES, inputResolution: res });
  return { graph, weights: nontrivialWeights(graph, 4) };
}

async function run(options: Partial<OnnxTrainerOptions>, steps: number, batches: { x: Tensor; labels: Int32Array }[], res = 32) {
  const { graph, weights } = small(res);
  const s = await backend.createTrainer(graph, weights, { optimizer: { kind: 'adamw', lr: 1e-3, weightDecay: 0.01 }, threads: 2, ...options });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await s.step(batches[i % batches.length]!.x, batches[i % batches.length]!.labels)).loss);
  return { s, losses, graph, before: weights };
}

describe('OnnxTrainSession', () => {
  const data = [textureBatch(6, 1, 32), textureBatch(6, 2, 32)];

  it('is the registered onnx backend and can train', async () => {
    expect(canTrain(await getBackend('onnx'))).toBe(true);
  });

  it('trains on CUDA and WebGPU where the provider loads (skips, saying so, where it does not)', async () => {
    for (const device of ['cuda', 'webgpu'] as const) {
      const { graph, weights } = small();
      let s;
      try {
        s = await backend.createTrainer(graph, weights, { optimizer: { kind: 'sgd', lr: 0.01 }, device });
      } catch (e) {
        expect(e).toBeInstanceOf(DeviceUnavailableError);
        console.warn(`skipping ${device} training: ${(e as Error).message.split('. ')[0]}`);
        continue;
      }
      const r = await s.step(data[0]!.x, data[0]!.labels);
      expect(s.device).toBe(device);
      expect(Number.isFinite(r.loss)).toBe(true);
      s.dispose();
    }
  });

  it('same seed, same run (dropout and drop-path masks included); another seed, another run', async () => {
    const a = await run({ seed: 7 }, 3, data);
    const b = await run({ seed: 7 }, 3, data);
    const c = await run({ seed: 8 }, 3, data);
    expect(b.losses).toEqual(a.losses);
    for (const [name, t] of a.s.weights()) expect(Array.from(b.s.weights().get(name)!.data as Float32Array), name).toEqual(Array.from(t.data as Float32Array));
    expect(c.losses[0]).not.toEqual(a.losses[0]);
    for (const r of [a, b, c]) r.s.dispose();
  });

  it('trains only the chosen parameters; frozen BatchNorm keeps its statistics', async () => {
    const { graph } = small();
    const trainable = selectTrainable(graph, { train: ['classifier'] });
    const r = await run({ trainable, freezeBatchNorm: true, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 } }, 2, data);
    const after = r.s.weights();
    for (const [name, t] of r.before) {
      const changed = maxDiff(t.data as Float32Array, after.get(name)!.data as Float32Array).diff > 0;
      expect(changed, name).toBe(name.startsWith('classifier.'));
    }
    r.s.dispose();
  });

  it('updates the running statistics of BatchNorm in training mode', async () => {
    const r = await run({}, 1, data);
    const after = r.s.weights();
    for (const name of ['bn1.running_mean', 'bn1.running_var', 'bn2.running_var'])
      expect(maxDiff(r.before.get(name)!.data as Float32Array, after.get(name)!.data as Float32Array).diff, name).toBeGreaterThan(0);
    expect([...after.keys()]).toEqual(r.graph.parameters.map((p) => p.name));
    r.s.dispose();
  });

  it('predicts in inference mode with its current weights, as the inference compiler does', async () => {
    const r = await run({}, 2, data);
    const x = randomInput([3, 3, 32, 32], 5);
    const ours = await r.s.predict(x);
    const runner = await backend.load(r.graph, r.s.weights(), { threads: 2 });
    const want = (await runner.run(x)).logits!;
    await runner.dispose();
    expect(ours.shape).toEqual([3, CLASSES]);
    const { diff, scale } = maxDiff(ours.data as Float32Array, want.data as Float32Array);
    expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
    r.s.dispose();
  });

  it('follows the schedule from startStep, and takes a smaller last batch', async () => {
    const schedule = { kind: 'cosine', totalSteps: 20, warmupSteps: 4 } as const;
    const { s } = await run({ schedule, startStep: 2, optimizer: { kind: 'sgd', lr: 0.05 } }, 0, data);
    const first = await s.step(data[0]!.x, data[0]!.labels);
    expect(first.lr).toBeCloseTo(learningRate(0.05, schedule, 2), 12);
    const part = textureBatch(3, 9, 32);
    const second = await s.step(part.x, part.labels);
    expect(second.lr).toBeCloseTo(learningRate(0.05, schedule, 3), 12);
    expect(Number.isFinite(second.loss) && second.accuracy >= 0 && second.accuracy <= 1).toBe(true);
    expect(s.steps).toBe(4);
    s.dispose();
  });

  it('says what is wrong with a batch, labels or options', async () => {
    const { graph, weights } = small();
    const s = await backend.createTrainer(graph, weights, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const { x, labels } = data[0]!;
    await expect(s.step(x, Int32Array.from(labels, () => CLASSES))).rejects.toThrow(InputError);
    await expect(s.step(x, labels.slice(1))).rejects.toThrow(/labels has 5 entries for a batch of 6/);
    await expect(s.step(randomInput([2, 3, 16, 16]), Int32Array.of(0, 1))).rejects.toThrow(/must have shape \[N, 3, 32, 32\]/);
    await expect(backend.createTrainer(graph, weights, { optimizer: { kind: 'sgd', lr: 0 } })).rejects.toThrow(InvalidSpecError);
    await expect(backend.createTrainer(graph, weights, { optimizer: { kind: 'sgd', lr: 0.1 }, trainable: ['bn1.running_mean'] })).rejects.toThrow(/trainable/);
    s.dispose();
  });

  it('learns a toy problem (phi = -3, 64 px) and the weights load in the inference backend', async () => {
    const graph = buildEfficientNet({ ...spec, dropout: 0.1 }, { numClasses: CLASSES, inputResolution: 64 });
    const steps = 60;
    const s = await backend.createTrainer(graph, randomWeights(graph, 1), {
      optimizer: { kind: 'adamw', lr: 4e-3, weightDecay: 0.01 },
      schedule: { kind: 'cosine', totalSteps: steps, warmupSteps: 5 },
      labelSmoothing: 0.05,
      clipGradNorm: 5,
      seed: 1,
      threads: 2,
    });
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const { x, labels } = textureBatch(8, 1000 + i, 64);
      losses.push((await s.step(x, labels)).loss);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.info(`ONNX Runtime training loss ${mean(losses.slice(0, 8)).toFixed(3)} -> ${mean(losses.slice(-8)).toFixed(3)} over ${steps} steps`);
    expect(mean(losses.slice(-8))).toBeLessThan(0.6 * mean(losses.slice(0, 8)));
    const test = textureBatch(32, 99, 64);
    const runner = await backend.load(graph, s.weights());
    const logits = (await runner.run(test.x)).logits!.data as Float32Array;
    await runner.dispose();
    const correct = countCorrect(logits, test.labels, CLASSES);
    console.info(`held-out accuracy ${correct}/32`);
    expect(correct / 32).toBeGreaterThan(0.6);
    s.dispose();
  });
});
