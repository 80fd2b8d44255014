import { checkOutputFile } from '@effnet/core';
import { defineCommand, type Io, UsageError } from '../args.js';
import { formatTable } from '../table.js';
import { BACKEND_OPTIONS, FORCE_OPTION } from './common.js';

export const evalCommand = defineCommand({
  name: 'eval',
  summary: 'accuracy, per-class precision/recall/F1 and the confusion matrix on an image folder',
  usage: 'effnet eval --data DIR --model M [--json] [--heatmap FILE.png]',
  options: {
    task: { type: 'string', choices: ['classification', 'detection', 'segmentation'], default: 'classification', valueName: 'TASK', description: 'classification (an ImageFolder), detection (a COCO directory: the 12 COCO numbers) or segmentation (images/ + masks/: mIoU)' },
    data: { type: 'string', required: true, valueName: 'DIR', description: "classification: an ImageFolder whose class folders are named as the model's classes; detection: annotations.json + images" },
    model: { type: 'string', valueName: 'M', description: 'a checkpoint (training output directory, .json or .safetensors) or a zoo entry' },
    weights: { type: 'string', valueName: 'CKPT', description: 'the same as --model (kept for scripts)' },
    ...BACKEND_OPTIONS,
    json: { type: 'boolean', description: 'print JSON' },
    heatmap: { type: 'string', valueName: 'FILE', description: 'classification: also write the confusion matrix as a PNG heat map' },
    plot: { type: 'string', valueName: 'FILE', description: 'detection: also write precision-recall curves as a PNG' },
    ...FORCE_OPTION,
  },
  examples: ['effnet eval --data photos/val --model runs/photos', 'effnet eval --data photos/val --model runs/photos --heatmap confusion.png', 'effnet eval --task detection --data scenes/val --model runs/det --plot pr.png', 'effnet eval --task segmentation --data scenes/val --weights runs/seg --json'],
  async run({ values: v }, io) {
    const { evaluate } = await import('@effnet/tasks');
    const model = v.model ?? v.weights;
    if (!model) throw new UsageError('effnet eval needs --model (a checkpoint or zoo entry); see effnet eval --help');
    if (v.task === 'detection') return evalDetection(model, v, io);
    if (v.task === 'segmentation') return evalSegmentation(model, v, io);
    if (v.plot) throw new UsageError('effnet eval: --plot is for --task detection (classification writes --heatmap)');
    if (v.heatmap) await checkOutputFile(v.heatmap, { force: v.force, flag: '--heatmap' });
    const r = await evaluate({ data: v.data, model, backend: v.backend as 'onnx' | 'tfjs', device: v.device as never, heatmap: v.heatmap });
    if (v.json) {
      io.out(JSON.stringify({ accuracy: r.accuracy, images: r.images, classes: r.classes, perClass: r.perClass, macro: r.macro, weighted: r.weighted, confusion: r.confusion, heatmap: r.heatmap, errors: r.errors }, null, 2));
      return r.errors.length ? 1 : 0;
    }
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    io.out(`accuracy ${pct(r.accuracy)} on ${r.images} images`);
    io.out('');
    io.out(
      formatTable(
        ['class', 'precision', 'recall', 'f1', 'support'],
        [
          ...r.perClass.map((c) => [c.class, pct(c.precision), pct(c.recall), pct(c.f1), c.support]),
          ['macro avg', pct(r.macro.precision), pct(r.macro.recall), pct(r.macro.f1), r.images],
          ['weighted avg', pct(r.weighted.precision), pct(r.weighted.recall), pct(r.weighted.f1), r.images],
        ],
      ),
    );
    io.out('');
    io.out('confusion matrix (rows: true class, columns: predicted)');
    io.out(formatTable(['', ...r.classes], r.confusion.map((row, i) => [r.classes[i]!, ...row])));
    if (r.heatmap) io.out(`\nwrote ${r.heatmap}`);
    for (const e of r.errors) io.out(`could not read ${e.name}: ${e.message}`);
    return r.errors.length ? 1 : 0;
  },
});

async function evalDetection(model: string, v: { data: string; backend: string; device?: string; json: boolean; plot?: string; heatmap?: string; force: boolean }, io: Io): Promise<number> {
  const { evaluateDetector, formatCocoSummary } = await import('@effnet/tasks');
  if (v.heatmap) throw new UsageError('effnet eval: --heatmap is for classification (detection writes --plot)');
  if (v.plot) await checkOutputFile(v.plot, { force: v.force, flag: '--plot' });
  const r = await evaluateDetector({ data: v.data, model, backend: v.backend as 'onnx' | 'tfjs', device: v.device as never, plot: v.plot });
  if (v.json) {
    io.out(JSON.stringify({ stats: r.stats, images: r.images, detections: r.numDetections, perClass: r.perClass, plot: r.plot }, null, 2));
    return 0;
  }
  io.out(`${r.images} images, ${r.numDetections} detections`);
  formatCocoSummary(r.stats).forEach((l) => io.out(l));
  const fmt = (x: number) => (x < 0 ? 'n/a' : x.toFixed(3));
  io.out('');
  io.out(formatTable(['id', 'category', 'AP', 'AP50'], r.perClass.map((c) => [String(c.categoryId), c.name, fmt(c.AP), fmt(c.AP50)])));
  if (r.plot) io.out(`\nwrote ${r.plot}`);
  return 0;
}

async function evalSegmentation(model: string, v: { data: string; backend: string; device?: string; json: boolean; plot?: string; heatmap?: string }, io: Io): Promise<number> {
  const { evaluateSegmenter } = await import('@effnet/tasks');
  if (v.heatmap || v.plot) throw new UsageError('effnet eval: --heatmap and --plot are for classification and detection');
  const r = await evaluateSegmenter({ data: v.data, model, backend: v.backend as 'onnx' | 'tfjs', device: v.device as never });
  if (v.json) {
    io.out(JSON.stringify({ mIoU: r.mIoU, pixelAccuracy: r.pixelAccuracy, perClass: r.perClass, images: r.images, pixels: r.pixels, classes: r.classes, confusion: r.confusion }, null, 2));
    return 0;
  }
  const pct = (x: number | null) => (x === null || Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`);
  io.out(`mIoU ${pct(r.mIoU)}, pixel accuracy ${pct(r.pixelAccuracy)} on ${r.images} images (${r.pixels} labelled pixels; 255 ignored)`);
  io.out('');
  io.out(formatTable(['class', 'IoU'], r.perClass.map((c) => [c.class, pct(c.iou)])));
  return 0;
}
