import { fc, test } from '@fast-check/vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepResult, Tensor, TensorMap, TrainSession } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { runTrainingLoop, TrainingError } from './loop.js';
import { AUGMENT_LEVELS, describeRecipe, OPTIMIZERS, type RecipeContext, resolveRecipe, resumedRecipeOptions, SCHEDULES, trainerSettings } from './recipe.js';
import { steepestDescent } from '../classification/finetune.js';

const ctx = (c: Partial<RecipeContext> = {}): RecipeContext => ({ imageSize: 224, trainImages: 1000, stepsPerEpoch: 32, epochs: 10, pretrained: true, frozenBackbone: false, ...c });

describe('the recipe', () => {
  test.prop([
    fc.record(
      {
        optimizer: fc.constantFrom(...OPTIMIZERS),
        lr: fc.double({ min: 1e-6, max: 1, noNaN: true }),
        weightDecay: fc.double({ min: 0, max: 0.5, noNaN: true }),
        schedule: fc.constantFrom(...SCHEDULES),
        augment: fc.constantFrom(...AUGMENT_LEVELS),
        labelSmoothing: fc.double({ min: 0, max: 0.5, noNaN: true }),
        flip: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    fc.integer({ min: 8, max: 1024 }),
    fc.integer({ min: 2, max: 100_000 }),
    fc.boolean(),
  ])('keeps every choice the user made, and gives a reason for every default it chose', (o, imageSize, trainImages, pretrained) => {
    const r = resolveRecipe(o, ctx({ imageSize, trainImages, pretrained }));
    for (const [k, v] of Object.entries(o)) expect(r[k as keyof typeof r], k).toBe(v);
    for (const k of ['optimizer', 'lr', 'weightDecay', 'schedule', 'augment', 'labelSmoothing', 'flip'] as const) if (!(k in o)) expect(r.reasons[k], k).toBeDefined();
    for (const k of Object.keys(o)) expect(r.reasons[k]).toBeUndefined();
    expect(r.cropScale[0]).toBeLessThanOrEqual(r.cropScale[1]);
    expect(describeRecipe(r)).toContain(r.optimizer);
  });

  it('keeps strong crops for large data of large images from scratch, and light ones for small images, small data, fine-tuning', () => {
    expect(resolveRecipe({}, ctx({ pretrained: false, trainImages: 100_000, imageSize: 224 })).cropScale).toEqual([0.08, 1]);
    expect(resolveRecipe({}, ctx({ pretrained: false, trainImages: 100_000, imageSize: 32 })).augment).toBe('light');
    expect(resolveRecipe({}, ctx({ pretrained: false, trainImages: 1400, imageSize: 224 })).augment).toBe('light');
    expect(resolveRecipe({}, ctx({ pretrained: true })).augment).toBe('light');
    expect(resolveRecipe({ cropScale: [0.9, 1] }, ctx()).cropScale).toEqual([0.9, 1]);
    expect(resolveRecipe({}, ctx({ frozenBackbone: true })).lr).toBe(1e-2);
  });

  it('describes detection by its scale jitter, without label smoothing, and starts new heads at a higher rate', () => {
    const det = (o = {}, c: Partial<RecipeContext> = {}) => resolveRecipe(o, ctx({ task: 'detection', imageSize: 128, ...c }));
    const r = det();
    expect(r.scaleJitter).toEqual([0.75, 1.33]);
    expect(r.labelSmoothing).toBe(0);
    expect(r.reasons.labelSmoothing).toBeUndefined();
    expect(describeRecipe(r)).toMatch(/scale jitter 0\.75-1\.33 \+ flips$/);
    expect(describeRecipe(r)).not.toMatch(/crops|smoothing/);
    expect(det({ augment: 'strong' }).scaleJitter).toEqual([0.1, 2]);
    expect(det({ augment: 'none' }).scaleJitter).toBeNull();
    expect(det({}, { newHeads: true }).lr).toBe(4e-3);
    expect(det({}, { pretrained: true }).reasons.lr).toMatch(/detector/);
    expect(() => det({ labelSmoothing: 0.1 })).toThrow(/no label smoothing/);
    expect(resolveRecipe({}, ctx()).scaleJitter).toBeNull();
  });

  it("describes segmentation by its joint scale jitter (DeepLab's 0.5-2.0 when strong), without label smoothing", () => {
    const seg = (o = {}, c: Partial<RecipeContext> = {}) => resolveRecipe(o, ctx({ task: 'segmentation', imageSize: 64, ...c }));
    const r = seg();
    expect(r.labelSmoothing).toBe(0);
    expect(describeRecipe(r)).toMatch(/scale jitter 0\.75-1\.33 \+ flips$/);
    expect(r.reasons.augment).toMatch(/segmentation.*mask/);
    expect(seg({ augment: 'strong' }).scaleJitter).toEqual([0.5, 2]);
    expect(seg({}, { newHeads: true }).reasons.lr).toMatch(/decoder/);
    expect(seg({}, { pretrained: true }).reasons.lr).toMatch(/segmenter/);
    expect(() => seg({ labelSmoothing: 0.1 })).toThrow(/segmentation/);
  });

  it('a resumed run continues with the recorded choices; what is given now wins', () => {
    const stored = resolveRecipe({}, ctx({ task: 'detection', imageSize: 128, newHeads: true }));
    const o = resumedRecipeOptions(stored, { lr: undefined, weightDecay: 0.01, epochs: 9 });
    expect(o).toMatchObject({ lr: 4e-3, weightDecay: 0.01, optimizer: 'adamw', labelSmoothing: 0, epochs: 9 });
    expect(resolveRecipe(o, ctx({ task: 'detection', imageSize: 128, pretrained: true })).lr).toBe(4e-3);
    expect(resumedRecipeOptions(undefined, { lr: 1 })).toEqual({ lr: 1 });
  });

  it('turns into core trainer settings', () => {
    const r = resolveRecipe({ optimizer: 'sgd' }, ctx());
    expect(trainerSettings(r, 320)).toEqual({ optimizer: { kind: 'sgd', lr: 1e-3, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }, schedule: { kind: 'cosine', totalSteps: 320, warmupSteps: 16 } });
  });
});

/** A session whose loss falls with the steps (and NaN on request), recording what it was fed. */
function fakeSession(losses: (step: number) => number): TrainSession & { fed: number[][] } {
  let steps = 0;
  const fed: number[][] = [];
  return {
    device: 'fake',
    notes: [],
    get steps() {
      return steps;
    },
    fed,
    async step(): Promise<StepResult> {
      throw new Error('not used');
    },
    async stepWith(batch: Tensor, targets: Record<string, Tensor>): Promise<StepResult> {
      fed.push(Array.from(targets.ids!.data as Float32Array));
      return { loss: losses(steps++), accuracy: Number.NaN, lr: 0.1, gradNorm: 1 };
    },
    async predict(b: Tensor) {
      return b;
    },
    async predictAll(b: Tensor) {
      return { out: b };
    },
    weights: () => new Map() as TensorMap,
    dispose() {},
  };
}

describe('the training loop', () => {
  const batch = async (indices: number[]) => ({ input: { dtype: 'float32' as const, shape: [indices.length], data: new Float32Array(indices.length) }, targets: { ids: { dtype: 'float32' as const, shape: [indices.length], data: Float32Array.from(indices) } } });

  test.prop([fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 1000 })])(
    'every sample is seen once an epoch, in a seeded order; best is saved on improvement; history has one row an epoch',
    async (size, batchSize, epochs, seed) => {
      const s = fakeSession((i) => 1 / (i + 1));
      const scores = [0.5, 0.4, 0.7, 0.7];
      const bests: boolean[] = [];
      const r = await runTrainingLoop({ session: s, size, batchSize, epochs, startEpoch: 0, seed, batch, metric: 'acc', validate: async () => ({ acc: scores[bests.length]! }), save: async (_row, best) => void bests.push(best) });
      const perEpoch = Math.ceil(size / batchSize);
      for (let e = 0; e < epochs; e++) expect(s.fed.slice(e * perEpoch, (e + 1) * perEpoch).flat().sort((a, b) => a - b)).toEqual(Array.from({ length: size }, (_, i) => i));
      expect(r.history.map((h) => h.epoch)).toEqual(Array.from({ length: epochs }, (_, i) => i + 1));
      expect(bests).toEqual([true, false, true, false].slice(0, epochs));
      const again = fakeSession((i) => 1 / (i + 1));
      await runTrainingLoop({ session: again, size, batchSize, epochs: 1, startEpoch: 0, seed, batch, metric: 'acc', validate: async () => ({ acc: 0 }), save: async () => undefined });
      expect(again.fed).toEqual(s.fed.slice(0, perEpoch));
    },
  );

  it('stops after `patience` epochs without a better score, and on a loss that is not finite', async () => {
    const r = await runTrainingLoop({ session: fakeSession(() => 1), size: 4, batchSize: 2, epochs: 10, startEpoch: 0, seed: 0, batch, metric: 'acc', validate: async () => ({ acc: 0.5 }), save: async () => undefined, patience: 2 });
    expect(r).toMatchObject({ stoppedEarly: true, trained: 3 });
    await expect(runTrainingLoop({ session: fakeSession(() => Number.NaN), size: 4, batchSize: 2, epochs: 1, startEpoch: 0, seed: 0, batch, metric: 'acc', validate: async () => ({}), save: async () => undefined })).rejects.toThrow(TrainingError);
  });
});

describe('the learning-rate finder', () => {
  it('suggests the rate of the steepest descent', () => {
    // Loss flat, then falling fastest around 1e-3, then blowing up.
    const points = Array.from({ length: 60 }, (_, i) => {
      const lr = 10 ** (-7 + (7 * i) / 59);
      const x = Math.log10(lr);
      return [lr, 2 - 1 / (1 + Math.exp(-(x + 3) * 3)) + (x > -0.5 ? (x + 0.5) ** 2 : 0)] as [number, number];
    });
    const s = steepestDescent(points);
    expect(Math.log10(s)).toBeGreaterThan(-3.6);
    expect(Math.log10(s)).toBeLessThan(-2.4);
    expect(() => steepestDescent(points.slice(0, 2))).toThrow(/diverged at once/);
  });

  it('runs a range test on real training and writes its plot', async () => {
    const { generateShapeDataset } = await import('../data/shapes.js');
    const { findLearningRate } = await import('../classification/finetune.js');
    const dir = mkdtempSync(join(tmpdir(), 'effnet-lr-'));
    await generateShapeDataset(join(dir, 'data'), { perClass: 6, size: 48, seed: 4 });
    const r = await findLearningRate({ data: join(dir, 'data'), model: 'effnet-shapes', epochs: 1, batch: 8, out: join(dir, 'run'), steps: 30, minLr: 1e-6, maxLr: 1, freeze: 'backbone' });
    expect(r.points.length).toBeGreaterThan(10);
    expect(r.suggested).toBeGreaterThan(1e-6);
    expect(r.suggested).toBeLessThan(1);
    const { default: sharp } = await import('sharp');
    expect((await sharp(r.plot).metadata()).format).toBe('png');
  });
});
