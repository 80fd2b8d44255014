import { cpSync, existsSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCENE_CLASSES } from '../data/scenes.js';
import { generateShapeSceneDataset } from '../data/shape-scenes.js';
import { loadSegmentationDataset } from './dataset.js';
import { evaluateSegmenter } from './evaluate.js';
import { fineTuneSegmenter } from './finetune.js';
import { encodeIndexPng, MaskError } from './index-png.js';
import { Segmenter } from './segmenter.js';
import { loadCheckpoint } from '../classification/model-card.js';
import { loadModelWeights } from '../models/resolve.js';

const root = mkdtempSync(join(tmpdir(), 'effnet-seg-'));

describe('segmentation datasets', () => {
  it('pair images and masks by stem, read classes.txt or infer class<i>, and say what is missing', async () => {
    const d = join(root, 'small');
    mkdirSync(join(d, 'images'), { recursive: true });
    mkdirSync(join(d, 'masks'), { recursive: true });
    const png = (v: number[]) => encodeIndexPng({ data: Uint8Array.from(v), width: 2, height: 2 });
    writeFileSync(join(d, 'masks', 'a.png'), png([0, 2, 255, 1]));
    writeFileSync(join(d, 'images', 'a.png'), png([0, 0, 0, 0]));
    expect((await loadSegmentationDataset(d)).classes).toEqual(['class0', 'class1', 'class2']);
    writeFileSync(join(d, 'classes.txt'), 'sky\nroad\ncar\nperson\n');
    expect((await loadSegmentationDataset(d)).classes).toEqual(['sky', 'road', 'car', 'person']);
    writeFileSync(join(d, 'images', 'b.jpg'), png([0, 0, 0, 0]));
    await expect(loadSegmentationDataset(d)).rejects.toThrow(/lacks the masks of 1 image\(s\) \(b.png\)/);
    await expect(loadSegmentationDataset(join(root, 'nothing'))).rejects.toThrow(MaskError);
  });
});

describe('training a segmenter', () => {
  it('trains through the shared loop, resumes, and its checkpoint segments and evaluates at the images\' size', async () => {
    const data = join(root, 'scenes');
    await generateShapeSceneDataset(data, { count: 10, size: 32, seed: 1, supersample: 1 });
    const out = join(root, 'run');
    const common = { data, model: 'deeplabv3plus_efficientnet_phi-4', size: 32, batch: 4, out, loss: 'ce+dice' as const, seed: 0 };
    const first = await fineTuneSegmenter({ ...common, epochs: 1 });
    expect(first.card).toMatchObject({ task: 'segmentation', classes: [...SCENE_CLASSES], segmenter: { name: 'deeplabv3plus_efficientnet_phi-4' }, epoch: 1 });
    expect(first.history[0]).toHaveProperty('mIoU');
    const resumed = await fineTuneSegmenter({ ...common, epochs: 2, resume: true, freeze: 'encoder' });
    expect(resumed.card.epoch).toBe(2);
    // The resumed run keeps the rate it started with (3e-3 from scratch), not a pretrained start's default.
    expect([first.recipe.lr, resumed.recipe.lr]).toEqual([3e-3, 3e-3]);
    expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2]);

    const segmenter = await Segmenter.load(out);
    try {
      expect(segmenter.classes).toEqual([...SCENE_CLASSES]);
      const [r] = await segmenter.segment(join(data, 'images', '3.png'));
      expect([r!.width, r!.height, r!.mask.length]).toEqual([32, 32, 1024]);
      expect(Object.values(r!.areas).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    } finally {
      await segmenter.dispose();
    }
    const e = await evaluateSegmenter({ data, model: out });
    expect(e.images).toBe(10);
    expect(e.pixels).toBe(10 * 32 * 32);
    expect(e.mIoU).toBeGreaterThanOrEqual(0);
    expect(e.perClass.map((c) => c.class)).toEqual([...SCENE_CLASSES]);
  }, 120_000);

  it("bifpnseg starts from a detector's backbone and BiFPN (effnet-shapes-det), trains its transposed-conv head, and segments", async () => {
    const data = join(root, 'scenes128');
    await generateShapeSceneDataset(data, { count: 4, size: 128, seed: 2, supersample: 1 });
    const out = join(root, 'bifpnseg');
    // A learning rate of 1e-9 leaves the started weights where they were: the BiFPN must be the detector's.
    const r = await fineTuneSegmenter({ data, model: 'bifpnseg_efficientdet_phi-4', encoder: 'effnet-shapes-det', size: 128, batch: 2, epochs: 1, lr: 1e-9, weightDecay: 0, out, seed: 0 });
    expect(r.card.segmenter).toMatchObject({ name: 'bifpnseg_efficientdet_phi-4', detector: 'efficientdet_phi-4', decoder: { kind: 'bifpnseg' } });
    expect(r.card.base).toBe('bifpnseg_efficientdet_phi-4 on effnet-shapes-det');
    const det = await loadModelWeights('effnet-shapes-det');
    const mine = await loadCheckpoint(out);
    for (const name of ['fpn.cell.0.fnode.0.after_combine.conv.conv_pw.weight', 'backbone.conv_stem.weight']) {
      const a = det.weights.get(name)!.data as Float32Array;
      const b = mine.weights.get(name)!.data as Float32Array;
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!))), name).toBeLessThan(1e-5);
    }
    const segmenter = await Segmenter.load(out);
    try {
      const [m] = await segmenter.segment(join(data, 'images', '1.png'));
      expect([m!.width, m!.height, m!.mask.length]).toEqual([128, 128, 128 * 128]);
    } finally {
      await segmenter.dispose();
    }
    // New classes (one more): a new head of the new width; --freeze encoder keeps the backbone and BiFPN, the head trains.
    const data8 = join(root, 'scenes128-8');
    cpSync(data, data8, { recursive: true });
    writeFileSync(join(data8, 'classes.txt'), [...SCENE_CLASSES, 'extra'].join('\n') + '\n');
    const out2 = join(root, 'bifpnseg-8');
    const r2 = await fineTuneSegmenter({ data: data8, model: out, size: 128, batch: 2, epochs: 1, lr: 1e-2, freeze: 'encoder', out: out2, seed: 0 });
    expect(r2.card.classes).toHaveLength(8);
    const next = await loadCheckpoint(out2);
    expect(next.weights.get('seg_head.head_transpose.weight')!.shape).toEqual([next.weights.get('seg_head.con2d_ts.3.weight')!.shape[1]! * 2, 8, 3, 3]);
    const moved = (name: string) => {
      const a = mine.weights.get(name)!.data as Float32Array;
      const b = next.weights.get(name)!.data as Float32Array;
      return Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    };
    expect(moved('backbone.conv_stem.weight')).toBe(0);
    expect(moved('fpn.cell.0.fnode.0.after_combine.conv.conv_pw.weight')).toBe(0);
    expect(moved('seg_head.con2d_ts.0.weight')).toBeGreaterThan(0);
    await expect(fineTuneSegmenter({ data, model: 'bifpnseg_efficientdet_phi-4', encoder: 'effnet-shapes-det', size: 96, epochs: 1, out: join(root, 'x') })).rejects.toThrow(/multiple of 128/);
    // Refused before anything is written.
    expect(existsSync(join(root, 'x'))).toBe(false);
    await expect(fineTuneSegmenter({ data, model: 'bifpnseg_efficientdet_d0', encoder: 'effnet-shapes-det', size: 128, epochs: 1, out: join(root, 'y') })).rejects.toThrow(/--backbone effnet-shapes-det .* is not the segmenter's detector \(efficientdet_d0\)/);
  }, 120_000);
});
