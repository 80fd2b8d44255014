import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxBackend } from '@effnet/backend-onnx';
import { buildEfficientNet, compound, randomWeights, readSafetensors } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { countCorrect, textureBatch } from '../../../testing/graphs.js';
import { maxDiff } from '../../../testing/peers.js';
import { lastStagesPrefixes, selectTrainable } from '@effnet/core';
import { saveWeights, selectRuntime, tf, TfjsBackend, TfjsModel, toNhwc as nhwc, Trainer } from '../src/index.js';

const RES = 64;
const CLASSES = 4;

const batch = (n: number, seed: number) => textureBatch(n, seed, RES, CLASSES);

describe('training on tfjs wasm', () => {
  it('a compound-scaled model (phi = -3, 64 px) learns, saves, and reloads in the ONNX backend with the same predictions', async () => {
    const rt = await selectRuntime('wasm');
    expect(rt.backend).toBe('wasm');
    const { spec } = compound({ phi: -3 });
    const graph = buildEfficientNet({ ...spec, dropout: 0.1 }, { numClasses: CLASSES, inputResolution: RES });
    const model = new TfjsModel(graph, randomWeights(graph, 1));
    const steps = 48;
    const trainer = new Trainer(model, { optimizer: { kind: 'adamw', lr: 6e-3, weightDecay: 0.01 }, schedule: { kind: 'cosine', totalSteps: steps, warmupSteps: 6 }, labelSmoothing: 0.05, clipGradNorm: 5, seed: 1 });
    const losses: number[] = [];
    const before = tf.memory().numTensors;
    for (let s = 0; s < steps; s++) {
      const { x, labels } = batch(8, 1000 + s);
      const xt = nhwc(x);
      losses.push(trainer.trainStep(xt, labels).loss);
      xt.dispose();
    }
    // One tensor per optimizer slot is expected (Adam's m and v); nothing else may accumulate.
    expect(tf.memory().numTensors - before).toBe(2 * model.trainableNames().length);
    const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
    const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
    console.info(`training loss ${first.toFixed(3)} -> ${last.toFixed(3)} over ${steps} steps`);
    expect(last).toBeLessThan(0.5 * first);

    const dir = mkdtempSync(join(tmpdir(), 'effnet-train-'));
    const file = join(dir, 'model.safetensors');
    await saveWeights(model, file, { arch: spec.name });
    const { tensors } = await readSafetensors(file);
    expect(tensors.get('bn1.running_var')).toBeDefined();
    // BatchNorm statistics moved away from their initial values during training.
    expect(Array.from(tensors.get('bn1.running_mean')!.data as Float32Array).some((v) => Math.abs(v) > 1e-3)).toBe(true);

    const test = batch(32, 99);
    const onnx = await new OnnxBackend().load(graph, tensors);
    const fromOnnx = (await onnx.run(test.x)).logits!.data as Float32Array;
    await onnx.dispose();
    const tfjs = await new TfjsBackend().load(graph, tensors, { device: 'wasm' });
    const fromTfjs = (await tfjs.run(test.x)).logits!.data as Float32Array;
    tfjs.dispose();
    const { diff, scale } = maxDiff(fromTfjs, fromOnnx);
    expect(diff).toBeLessThanOrEqual(1e-4 * scale);
    const correct = countCorrect(fromOnnx, test.labels, CLASSES);
    console.info(`held-out accuracy ${correct}/32`);
    expect(correct / 32).toBeGreaterThan(0.8);
    trainer.dispose();
    model.dispose();
  });
});

describe('trainer pieces', () => {
  it('freezing by prefix trains only what is asked, and frozen BN keeps its statistics', async () => {
    await selectRuntime('wasm');
    const { spec } = compound({ phi: -3 });
    const graph = buildEfficientNet(spec, { numClasses: CLASSES, inputResolution: 32 });
    const model = new TfjsModel(graph, randomWeights(graph, 2));
    const train = selectTrainable(graph, { train: ['classifier'] });
    expect(train).toEqual(['classifier.weight', 'classifier.bias']);
    expect(lastStagesPrefixes(graph, 2)).toEqual(['blocks.5', 'blocks.6', 'conv_head', 'bn2', 'classifier']);
    const before = model.exportWeights();
    const trainer = new Trainer(model, { optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 }, trainable: train, freezeBatchNorm: true });
    const { x, labels } = batch(8, 5);
    const full = nhwc(x);
    const xs = tf.slice(full, [0, 16, 16, 0], [8, 32, 32, 3]) as ReturnType<typeof tf.tensor4d>;
    full.dispose();
    trainer.trainStep(xs, labels);
    trainer.trainStep(xs, labels);
    const after = model.exportWeights();
    for (const [name, t] of before) {
      const changed = maxDiff(t.data as Float32Array, after.get(name)!.data as Float32Array).diff > 0;
      expect(changed, name).toBe(name.startsWith('classifier.'));
    }
    expect(() => selectTrainable(graph, { train: ['nope'] })).toThrow(/prefixes that match some parameter/);
    trainer.dispose();
    model.dispose();
  });
});
