import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
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
});
