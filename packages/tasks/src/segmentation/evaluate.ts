/** `effnet eval --task segmentation`: a segmenter's masks on a dataset against its labels, from one confusion matrix. */
import type { Device } from '@effnet/core';
import { TrainingError } from '../training/loop.js';
import { loadSegmentationDataset } from './dataset.js';
import { loadPairs, scoreMasks } from './finetune.js';
import { Segmenter } from './segmenter.js';

export interface EvaluateSegmenterOptions {
  data: string;
  model: string;
  backend?: 'onnx' | 'tfjs';
  device?: Device;
}

export interface SegmenterEvaluation {
  images: number;
  classes: string[];
  mIoU: number;
  pixelAccuracy: number;
  perClass: { class: string; iou: number | null }[];
  /** confusion[label][prediction] in pixels. */
  confusion: number[][];
  pixels: number;
}

export async function evaluateSegmenter(o: EvaluateSegmenterOptions): Promise<SegmenterEvaluation> {
  const data = await loadSegmentationDataset(o.data);
  const segmenter = await Segmenter.load(o.model, { backend: o.backend, device: o.device });
  try {
    if (data.classes.length !== segmenter.classes.length)
      throw new TrainingError(`${o.data} has ${data.classes.length} classes (${data.classes.join(', ')}), the model ${segmenter.classes.length} (${segmenter.classes.join(', ')}); evaluate on data labelled with the model's classes`);
    const pairs = await loadPairs(data.samples, data.classes.length);
    const predictions = (await segmenter.segmentImages(pairs.map((p) => p.image))).map((s) => s.mask);
    const m = scoreMasks(pairs, predictions, data.classes.length);
    return { images: pairs.length, classes: segmenter.classes, mIoU: m.mIoU, pixelAccuracy: m.pixelAccuracy, perClass: segmenter.classes.map((c, i) => ({ class: c, iou: m.perClassIoU[i]! })), confusion: m.confusion, pixels: m.pixels };
  } finally {
    await segmenter.dispose();
  }
}
