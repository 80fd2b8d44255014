import { basename, extname, join } from 'node:path';
import { claimOutputDir, EffnetError } from '@effnet/core';
import { defineCommand } from '../args.js';
import { formatTable } from '../table.js';
import { expandImagePaths } from './classify.js';
import { BACKEND_OPTIONS, FORCE_OPTION, MODEL_OPTIONS } from './common.js';

/** Box coordinates to 0.01 px and scores to 1e-4 in what the command prints. */
const round = (v: number, digits: number) => Number(v.toFixed(digits));

/** A file name in `dir` for an image's drawing: its own name as .png, numbered when two images share it. */
export function drawingName(file: string, taken: Set<string>): string {
  const stem = basename(file, extname(file)) || 'image';
  let name = `${stem}.png`;
  for (let k = 2; taken.has(name); k++) name = `${stem}-${k}.png`;
  taken.add(name);
  return name;
}

export const detectCommand = defineCommand({
  name: 'detect',
  summary: 'boxes and labels for JPEG/PNG/WebP images (EfficientDet)',
  usage: 'effnet detect <image|dir...> --model M [options]',
  positionals: { name: '<image|dir...>', description: 'images, or directories searched recursively for them', min: 1 },
  options: {
    model: { type: 'string', required: true, valueName: 'M', description: 'a detection zoo entry (tf_efficientdet_d0.coco), a detector weight file, or a detector (random weights unless --weights)' },
    ...MODEL_OPTIONS,
    score: { type: 'number', min: 0, max: 1, default: 0.4, valueName: 'S', description: 'keep detections scoring at least S' },
    max: { type: 'number', integer: true, min: 1, max: 5000, default: 100, valueName: 'K', description: 'at most K detections per image, best first' },
    'soft-nms': { type: 'boolean', description: "effdet's Gaussian soft-NMS instead of NMS at IoU 0.5" },
    ...BACKEND_OPTIONS,
    batch: { type: 'number', integer: true, min: 1, max: 1024, default: 8, valueName: 'N', description: 'images per run' },
    json: { type: 'boolean', description: 'JSON lines {file, width, height, detections: [{label, classId, score, box: [x1, y1, x2, y2]}]}' },
    draw: { type: 'string', valueName: 'DIR', description: 'write each image with its boxes and labels as DIR/<name>.png' },
    ...FORCE_OPTION,
    'skip-errors': { type: 'boolean', description: 'exit 0 even when some images cannot be read (they are reported either way)' },
  },
  notes: [
    'Boxes are in the original image\'s pixels. Class ids are 1-based as effdet numbers them (COCO category ids for the .coco entries).',
    'Exit codes: 0 every image read, 1 an error or (without --skip-errors) some images unreadable, 2 a usage mistake.',
  ],
  examples: [
    'effnet detect street.jpg --model tf_efficientdet_d0.coco',
    'effnet detect photos/ --model tf_efficientdet_lite0.coco --json --score 0.3 --draw boxes/',
    'effnet detect a.jpg --model tf_efficientdet_d7 --weights tf_efficientdet_d7_53-6d1d7a95.pth --soft-nms',
  ],
  async run({ values: v, positionals }, io) {
    const { Detector, decodeImage, detectionsPng } = await import('@effnet/tasks');
    const files = await expandImagePaths(positionals);
    if (!files.length) throw new EffnetError(`no JPEG, PNG or WebP images in ${positionals.join(', ')}`);
    // Claimed before any work, so that a directory that may not be written over stops the command at once.
    if (v.draw !== undefined) await claimOutputDir(v.draw, { owner: 'effnet detect', force: v.force, flag: '--draw' });
    const detector = await Detector.load(v.model, {
      backend: v.backend as 'onnx' | 'tfjs',
      device: v.device as never,
      threads: v.threads,
      weights: v.weights,
      weightsFormat: v['weights-format'],
      weightsKey: v['weights-key'],
    });
    try {
      if (detector.random) io.progress.write(`effnet: note: ${v.model} has random weights (an architecture without --weights): its boxes mean nothing; use a zoo entry such as tf_efficientdet_d0.coco\n`);
      for (const n of detector.model.notes) io.progress.write(`effnet: note: ${n}\n`);
      const { results, errors } = await detector.detect(files, { score: v.score, maxDetections: v.max, nms: v['soft-nms'] ? 'soft' : 'hard', batchSize: v.batch, skipErrors: true });
      const shown = results.map((r) => ({
        file: r.name,
        width: r.width,
        height: r.height,
        detections: r.detections.map((d) => ({ label: d.label, classId: d.classId, score: round(d.score, 4), box: d.box.map((c) => round(c, 2)) })),
      }));
      if (v.json) {
        for (const r of shown) io.out(JSON.stringify(r));
        for (const e of errors) io.out(JSON.stringify({ file: e.name, error: e.error.message }));
      } else {
        const rows = shown.flatMap((r) =>
          r.detections.length ? r.detections.map((d, i) => [i === 0 ? r.file : '', d.label, d.score.toFixed(2), d.box.map((c) => c.toFixed(1)).join(', ')]) : [[r.file, '(none)', '', '']],
        );
        if (rows.length) io.out(formatTable(['image', 'label', 'score', 'box x1, y1, x2, y2'], rows));
        for (const e of errors) io.out(`could not read ${e.name}: ${e.error.message}`);
      }
      if (v.draw !== undefined) {
        const taken = new Set<string>();
        for (const r of results) {
          const image = await decodeImage(r.name);
          await detectionsPng(image, r.detections, join(v.draw, drawingName(r.name, taken)));
        }
        io.progress.write(`effnet: drew ${results.length} image${results.length === 1 ? '' : 's'} in ${v.draw}\n`);
      }
      if (errors.length) io.progress.write(`effnet: ${errors.length} of ${files.length} images could not be read${v['skip-errors'] ? '' : ' (exit code 1; --skip-errors makes it 0)'}\n`);
      return errors.length && !v['skip-errors'] ? 1 : 0;
    } finally {
      await detector.dispose();
    }
  },
});
