import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readSafetensors } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { stateDictOf, zipPth } from '../../../core/test/pth-writer.js';
import { generateShape, generateShapeDataset, SHAPE_CLASSES } from '../data/shapes.js';
import { Classifier } from './classifier.js';
import { evaluate } from './evaluate.js';
import { fineTune } from './finetune.js';
import { loadCheckpoint } from './model-card.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'effnet-cls-'));

async function pngOf(seed: number, i: number): Promise<Buffer> {
  const im = generateShape(seed, i, { size: 48 });
  return sharp(Buffer.from(im.data), { raw: { width: 48, height: 48, channels: 3 } }).png().toBuffer();
}

describe('the embedded effnet-shapes model', () => {
  it('classifies freshly generated images (a seed it never saw) at >= 95% accuracy, with a heat map', async () => {
    const dir = tmp();
    await generateShapeDataset(join(dir, 'data'), { perClass: 25, size: 48, seed: 424242 });
    const r = await evaluate({ data: join(dir, 'data'), model: 'effnet-shapes', heatmap: join(dir, 'confusion.png') });
    console.info(`effnet-shapes on 150 fresh images: accuracy ${(100 * r.accuracy).toFixed(1)}%, macro F1 ${r.macro.f1.toFixed(3)}`);
    expect(r.images).toBe(150);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect((await sharp(r.heatmap!).metadata()).format).toBe('png');
  });

  it('reports a corrupt file by name and still classifies the rest when asked to', async () => {
    const dir = tmp();
    const good = [0, 1, 2].map((i) => join(dir, `${i}.png`));
    for (const [i, f] of good.entries()) writeFileSync(f, await pngOf(77, i));
    const bad = join(dir, 'broken.jpg');
    writeFileSync(bad, (await pngOf(77, 3)).subarray(0, 40));
    const c = await Classifier.load('effnet-shapes');
    const { results, errors } = await c.classify([good[0]!, bad, good[1]!, good[2]!], { topK: 2, skipErrors: true });
    expect(errors.map((e) => [e.index, e.name])).toEqual([[1, bad]]);
    expect(results.map((r) => r.index)).toEqual([0, 2, 3]);
    for (const r of results) expect(SHAPE_CLASSES).toContain(r.top[0]!.label);
    expect(results[0]!.top[0]!.prob).toBeGreaterThan(results[0]!.top[1]!.prob);
    await expect(c.classify([bad])).rejects.toThrow(/broken\.jpg/);
    await c.dispose();
  });
});

describe('checkpoints with PyTorch weights', () => {
  it('a model card whose weights are a .pth training checkpoint classifies like the same weights as safetensors', async () => {
    const assets = fileURLToPath(new URL('../../../zoo/assets/', import.meta.url));
    const card = JSON.parse(readFileSync(join(assets, 'effnet-shapes.json'), 'utf8'));
    const { tensors } = await readSafetensors(join(assets, card.weights));
    const dir = tmp();
    writeFileSync(join(dir, 'model.pth'), zipPth({ epoch: 30, model: stateDictOf(tensors, 'module.'), optimizer: { state: new Map(), param_groups: [{ lr: 0.01 }] } }));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...card, weights: 'model.pth' }));
    const images = [0, 1, 2, 3].map((i) => join(dir, `${i}.png`));
    for (const [i, f] of images.entries()) writeFileSync(f, await pngOf(5, i));
    const fromPth = await Classifier.load(join(dir, 'model.pth'), { weightsKey: 'model' });
    const embedded = await Classifier.load('effnet-shapes');
    const a = await fromPth.classify(images, { topK: 3 });
    const b = await embedded.classify(images, { topK: 3 });
    expect(a.results.map((r) => r.top)).toEqual(b.results.map((r) => r.top));
    await Promise.all([fromPth.dispose(), embedded.dispose()]);
    await expect(loadCheckpoint(dir, { weightsKey: 'ema' })).rejects.toThrow(/model\.pth: weights key "ema" is not in the checkpoint; entries holding weights: "model"/);
  });
});

describe('fine-tuning', () => {
  it('a pretrained model fine-tuned on a small ImageFolder reaches high accuracy; the checkpoint predicts identically on both backends', async () => {
    const dir = tmp();
    // Three of the six shapes, new images: the classifier is replaced (3 outputs) and trained on frozen features.
    const data = join(dir, 'data');
    const all = await generateShapeDataset(join(dir, 'all'), { perClass: 30, size: 48, seed: 99 });
    const keep = ['circle', 'square', 'triangle'];
    for (const f of all.files) {
      const cls = SHAPE_CLASSES[f.label]!;
      if (!keep.includes(cls)) continue;
      const { mkdirSync, copyFileSync } = await import('node:fs');
      mkdirSync(join(data, cls), { recursive: true });
      copyFileSync(f.path, join(data, cls, f.path.split('/').at(-1)!));
    }
    const out = join(dir, 'run');
    const r = await fineTune({ data, model: 'effnet-shapes', epochs: 3, batch: 16, freeze: 'backbone', lr: 0.02, out, seed: 1, valFraction: 0.2, cropScale: [0.6, 1] });
    console.info(`fine-tune history: ${JSON.stringify(r.history.map((h) => [h.trainLoss!.toFixed(3), h.valAccuracy!.toFixed(2)]))}`);
    expect(r.card.classes).toEqual(keep);
    expect(r.card.base).toBe('effnet-shapes');
    expect(r.card.metrics!.valAccuracy).toBeGreaterThanOrEqual(0.9);

    // The backbone did not move (frozen), the classifier did.
    const ck = await loadCheckpoint(out);
    expect(ck.weights.get('classifier.weight')!.shape).toEqual([3, ck.card.spec.headChannels]);

    const images = [0, 3, 5, 6, 9, 11].map((i) => join(data, keep[i % 3]!, `${String(Math.floor(i / 3)).padStart(2, '0')}.png`));
    const onnx = await Classifier.load(out, { backend: 'onnx' });
    const tfjs = await Classifier.load(out, { backend: 'tfjs', device: 'wasm' });
    const a = await onnx.classify(images, { topK: 3 });
    const b = await tfjs.classify(images, { topK: 3 });
    for (let i = 0; i < images.length; i++) {
      expect(b.results[i]!.top.map((t) => t.index)).toEqual(a.results[i]!.top.map((t) => t.index));
      for (let k = 0; k < 3; k++) expect(Math.abs(b.results[i]!.top[k]!.prob - a.results[i]!.top[k]!.prob)).toBeLessThan(1e-4);
    }
    await onnx.dispose();
    await tfjs.dispose();

    // Resume: the next epoch continues from the checkpoint's epoch and schedule position.
    const again = await fineTune({ data, model: 'effnet-shapes', epochs: 4, batch: 16, freeze: 'backbone', lr: 0.02, out, seed: 1, valFraction: 0.2, resume: true });
    expect(again.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(again.card.step).toBeGreaterThan(r.card.step);
  });
});
