/**
 * `effnet eval --task detection`: a detector on a COCO dataset, the 12 numbers pycocotools prints, AP per category and,
 * when asked, a precision-recall plot.
 */
import type { Device } from '@effnet/core';
import { lineChartPng, type Series } from '../render/lines.js';
import type { CocoEvalResult } from './coco-eval.js';
import { evaluateCoco } from './coco-eval.js';
import { loadCocoDetection, loadDetectionImage } from './coco-dataset.js';
import { Detector } from './detector.js';
import { DetectionDatasetError } from './errors.js';

export interface EvaluateDetectorOptions {
  /** A COCO dataset directory (annotations.json + images). */
  data: string;
  /** A detector checkpoint or detection zoo entry. */
  model: string;
  backend?: 'onnx' | 'tfjs';
  device?: Device;
  batchSize?: number;
  /** Write precision-recall curves (IoU 0.5, 0.75 and the mean over 0.50:0.95) as a PNG here. */
  plot?: string;
}

export interface EvaluateDetectorResult extends CocoEvalResult {
  images: number;
  /** The PNG written, if asked. */
  plot?: string;
}

/**
 * Detects on every image of the dataset (scores down to effdet's evaluation threshold, 0.001, at most 100 per image,
 * as effdet's COCO evaluation) and scores the detections against its annotations with the pycocotools-equal COCOeval.
 */
export async function evaluateDetector(o: EvaluateDetectorOptions): Promise<EvaluateDetectorResult> {
  const data = await loadCocoDetection(o.data);
  const detector = await Detector.load(o.model, { backend: o.backend, device: o.device });
  try {
    const names = detector.labels;
    const byName = new Map(data.categories.map((c) => [c.name, c.id]));
    // The detector's class k (1-based) is the dataset category of the same name, else of the same position.
    const categoryOf = (classId: number): number | undefined => byName.get(names[classId - 1] ?? '') ?? (names.length ? undefined : data.categories[classId - 1]?.id);
    if (names.length && !names.some((n) => byName.has(n)))
      throw new DetectionDatasetError(o.data, `none of its categories (${data.categories.map((c) => c.name).join(', ')}) is one of the model's classes (${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''})`);
    const results: { image_id: number; category_id: number; bbox: number[]; score: number }[] = [];
    const batch = o.batchSize ?? 8;
    for (let s = 0; s < data.samples.length; s += batch) {
      const samples = data.samples.slice(s, s + batch);
      const images = await Promise.all(samples.map(async (x) => ({ ...(await loadDetectionImage(x)), name: x.file })));
      const r = await detector.detect(images, { score: 0.001, maxDetections: 100 });
      r.results.forEach((im, k) => {
        for (const d of im.detections) {
          const cat = categoryOf(d.classId);
          if (cat === undefined) continue;
          const [x1, y1, x2, y2] = d.box;
          results.push({ image_id: samples[k]!.imageId, category_id: cat, bbox: [x1, y1, x2 - x1, y2 - y1], score: d.score });
        }
      });
    }
    const r = evaluateCoco(data.groundTruth, results, { gtSource: data.annotationsFile });
    let plot: string | undefined;
    if (o.plot) {
      const curve = (iou: number | 'mean'): Series => {
        const rows = iou === 'mean' ? r.pr.precision : [r.pr.precision[r.pr.iouThresholds.findIndex((t) => Math.abs(t - iou) < 1e-9)]!];
        return {
          name: iou === 'mean' ? 'IoU 0.50:0.95 (mean)' : `IoU ${iou}`,
          points: r.pr.recallThresholds.map((rec, k) => {
            const ps = rows.map((row) => row[k]!).filter((p) => p >= 0);
            return [rec, ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : Number.NaN] as const;
          }),
        };
      };
      plot = (await lineChartPng([{ title: `precision-recall (AP ${r.stats.AP.toFixed(3)}, AP50 ${r.stats.AP50.toFixed(3)})`, xLabel: 'recall', yLabel: 'precision', yRange: [0, 1], series: [curve(0.5), curve(0.75), curve('mean')] }], o.plot)).file;
    }
    return { ...r, images: data.samples.length, ...(plot ? { plot } : {}) };
  } finally {
    await detector.dispose();
  }
}
