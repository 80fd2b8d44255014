/**
 * The shipped effnet-shapes-seg does what the README says: on fresh generated scenes (a seed it never saw) its mIoU
 * is at least 0.85 (measured on 300 scenes in the README; 48 here), its classes are the background and the shapes, and
 * its masks come at the images' size. The pinned checksum is verified on load.
 */
import { describe, expect, it } from 'vitest';
import { generateShapeScene, SCENE_CLASSES, SegmentationConfusion, Segmenter } from '../src/index.js';

describe('the embedded segmenter effnet-shapes-seg', () => {
  it('segments fresh scenes: mIoU >= 0.85', async () => {
    const segmenter = await Segmenter.load('effnet-shapes-seg', { threads: 1 });
    try {
      expect(segmenter.classes).toEqual([...SCENE_CLASSES]);
      const scenes = Array.from({ length: 48 }, (_, i) => generateShapeScene(20261202, i, { size: 64 }));
      const results = await segmenter.segmentImages(scenes.map((s) => s.image));
      const cm = new SegmentationConfusion(SCENE_CLASSES.length);
      results.forEach((r, i) => {
        expect([r.width, r.height]).toEqual([64, 64]);
        cm.add(scenes[i]!.mask.data, r.mask);
      });
      const m = cm.metrics();
      console.info(`effnet-shapes-seg on 48 fresh scenes: mIoU ${m.mIoU.toFixed(3)}, pixel accuracy ${m.pixelAccuracy.toFixed(3)}`);
      expect(m.mIoU).toBeGreaterThanOrEqual(0.85);
    } finally {
      await segmenter.dispose();
    }
  });
});
