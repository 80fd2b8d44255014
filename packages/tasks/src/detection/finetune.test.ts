import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeBoxDataset } from '../../../../testing/boxes.js';
import { loadCheckpoint } from '../classification/model-card.js';
import { loadModelWeights } from '../models/resolve.js';
import { Detector } from './detector.js';
import { evaluateDetector } from './evaluate.js';
import { fineTuneDetector } from './finetune.js';

describe('fine-tuning a detector', () => {
  it('trains a small EfficientDet on a COCO directory, checkpoints it with its categories, and the checkpoint detects and evaluates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-det-ft-'));
    await writeBoxDataset(join(dir, 'data'), { images: 24, size: 128, seed: 3 });
    const out = join(dir, 'run');
    const r = await fineTuneDetector({ data: join(dir, 'data'), model: 'efficientdet_phi-3', epochs: 2, batch: 8, out, seed: 1, valFraction: 0.25, lr: 3e-3 });
    expect(r.history.map((h) => h.epoch)).toEqual([1, 2]);
    for (const h of r.history) {
      expect(Number.isFinite(h.trainLoss)).toBe(true);
      expect(h.AP).toBeGreaterThanOrEqual(0);
    }
    expect(readdirSync(out).sort()).toEqual(['best.json', 'best.safetensors', 'model.json', 'model.safetensors', 'training-curves.png']);
    const ck = await loadCheckpoint(out);
    expect(ck.card).toMatchObject({ task: 'detection', classes: ['square', 'disk'], categories: [{ id: 1, name: 'square' }, { id: 2, name: 'disk' }] });
    const d = await Detector.load(out);
    expect(d.labels).toEqual(['square', 'disk']);
    await d.dispose();
    const e = await evaluateDetector({ data: join(dir, 'data'), model: out, plot: join(dir, 'pr.png') });
    expect(e.images).toBe(24);
    expect(e.stats.AP).toBeGreaterThanOrEqual(0);
    expect(e.plot).toBe(join(dir, 'pr.png'));
    // Resume continues the epochs and the schedule.
    const again = await fineTuneDetector({ data: join(dir, 'data'), model: 'efficientdet_phi-3', epochs: 3, batch: 8, out, seed: 1, valFraction: 0.25, lr: 3e-3, resume: true });
    expect(again.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
  });

  it('starts the backbone of a detector architecture from a classifier (--backbone), and refuses one of another network', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-det-bb-'));
    await writeBoxDataset(join(dir, 'data'), { images: 8, size: 128, seed: 5 });
    const out = join(dir, 'run');
    // efficientdet_phi-4's backbone is efficientnet_phi-4, effnet-shapes' network.
    await fineTuneDetector({ data: join(dir, 'data'), model: 'efficientdet_phi-4', backbone: 'effnet-shapes', freeze: 'backbone', epochs: 1, batch: 4, out, seed: 1, valFraction: 0.25 });
    const shapes = await loadModelWeights('effnet-shapes');
    const ck = await loadCheckpoint(out);
    expect(ck.card.base).toBe('efficientdet_phi-4 on effnet-shapes');
    let compared = 0;
    for (const [name, t] of shapes.weights) {
      if (!/conv.*weight$/.test(name) || name.startsWith('classifier')) continue;
      const d = ck.weights.get(`backbone.${name}`);
      if (!d) continue;
      expect(Array.from(d.data as Float32Array)).toEqual(Array.from(t.data as Float32Array));
      compared++;
    }
    expect(compared).toBeGreaterThan(20);
    await expect(fineTuneDetector({ data: join(dir, 'data'), model: 'efficientdet_phi-3', backbone: 'effnet-shapes', epochs: 1, out: join(dir, 'other') })).rejects.toThrow(
      /effnet-shapes \(efficientnet_phi-4\) is not the detector's backbone \(efficientnet_phi-3\)/,
    );
  });
});
