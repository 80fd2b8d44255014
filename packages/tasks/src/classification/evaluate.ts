import { type Device, EffnetError } from '@effnet/core';
import { scanImageFolder } from '../data/image-folder.js';
import { type ClassificationReport, classificationReport } from '../metrics/classification.js';
import { confusionHeatmapPng } from '../render/charts.js';
import { Classifier } from './classifier.js';

export interface EvaluateOptions {
  /** An ImageFolder (a folder per class, named as the model's classes). */
  data: string;
  /** A checkpoint (directory, .json or .safetensors) or a zoo name. */
  model: string;
  backend?: 'onnx' | 'tfjs';
  device?: Device;
  /** Write the confusion matrix as a PNG heat map here. */
  heatmap?: string;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluateResult extends ClassificationReport {
  images: number;
  classes: string[];
  /** The PNG written, if asked for. */
  heatmap?: string;
  errors: { name: string; message: string }[];
}

export class EvaluationError extends EffnetError {
  override name = 'EvaluationError';
}

/** Accuracy, per-class precision/recall/F1, macro and weighted averages and the confusion matrix on an ImageFolder. */
export async function evaluate(o: EvaluateOptions): Promise<EvaluateResult> {
  const folder = await scanImageFolder(o.data);
  const classifier = await Classifier.load(o.model, { backend: o.backend, device: o.device });
  try {
    const classes = [...classifier.labels];
    const unknown = folder.classes.filter((c) => !classes.includes(c));
    if (unknown.length)
      throw new EvaluationError(`${o.data} has class folders the model does not know: ${unknown.join(', ')} (the model's classes: ${classes.join(', ')})`);
    const yTrue: number[] = [];
    const yPred: number[] = [];
    const errors: { name: string; message: string }[] = [];
    const batchSize = o.batchSize ?? 32;
    for (let s = 0; s < folder.samples.length; s += batchSize) {
      const chunk = folder.samples.slice(s, s + batchSize);
      const { results, errors: bad } = await classifier.classify(
        chunk.map((x) => x.path),
        { topK: 1, skipErrors: true, batchSize },
      );
      for (const e of bad) errors.push({ name: e.name, message: e.error.message });
      for (const r of results) {
        yTrue.push(classes.indexOf(folder.classes[chunk[r.index]!.label]!));
        yPred.push(r.top[0]!.index);
      }
      o.onProgress?.(Math.min(s + batchSize, folder.samples.length), folder.samples.length);
    }
    const report = classificationReport(yTrue, yPred, classes);
    let heatmap: string | undefined;
    if (o.heatmap) heatmap = (await confusionHeatmapPng(report.confusion, classes, o.heatmap, { title: `${o.model}: accuracy ${(100 * report.accuracy).toFixed(1)}%` })).file;
    return { ...report, images: yTrue.length, classes, ...(heatmap ? { heatmap } : {}), errors };
  } finally {
    await classifier.dispose();
  }
}
