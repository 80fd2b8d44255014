/**
 * The shipped effnet-shapes-det does what the README says: on fresh generated scenes (a seed it never saw) its COCO
 * AP50 is at least 0.9, and its classes are the shapes. The pinned checksum is verified on load.
 */
import { describe, expect, it } from 'vitest';
import { Detector, evaluateCoco, generateScene, SHAPE_CLASSES } from '../src/index.js';

describe('the embedded detector effnet-shapes-det', () => {
  it('finds the shapes of fresh scenes: COCO AP50 >= 0.9', async () => {
    const detector = await Detector.load('effnet-shapes-det', { threads: 1 });
    try {
      expect(detector.labels).toEqual([...SHAPE_CLASSES]);
      expect(detector.inputSize).toEqual([128, 128]);
      const scenes = Array.from({ length: 24 }, (_, i) => generateScene(20261202, i, { size: 128, supersample: 2 }));
      const { results } = await detector.detect(scenes.map((s) => ({ data: s.data, width: s.width, height: s.height })), { score: 0.05 });
      const gt = {
        images: scenes.map((s, i) => ({ id: i + 1, width: s.width, height: s.height })),
        annotations: scenes.flatMap((s, i) =>
          s.objects.map((o, k) => ({ id: i * 100 + k + 1, image_id: i + 1, category_id: o.label + 1, bbox: [o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]], area: o.area, iscrowd: 0 })),
        ),
        categories: SHAPE_CLASSES.map((name, i) => ({ id: i + 1, name })),
      };
      const dt = results.flatMap((r, i) => r.detections.map((d) => ({ image_id: i + 1, category_id: d.classId, bbox: [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]], score: d.score })));
      const { stats } = evaluateCoco(gt, dt);
      expect(stats.AP50).toBeGreaterThanOrEqual(0.9);
      expect(stats.AP).toBeGreaterThan(0.7);
    } finally {
      await detector.dispose();
    }
  });
});
