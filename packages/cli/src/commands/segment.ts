import { join } from 'node:path';
import { claimOutputDir, EffnetError, writeFileAtomic } from '@effnet/core';
import { defineCommand } from '../args.js';
import { formatTable } from '../table.js';
import { expandImagePaths } from './classify.js';
import { drawingName as outputName } from './detect.js';
import { BACKEND_OPTIONS, FORCE_OPTION, MODEL_OPTIONS } from './common.js';

export const segmentCommand = defineCommand({
  name: 'segment',
  summary: 'a class per pixel for JPEG/PNG/WebP images: index masks and colour overlays',
  usage: 'effnet segment <image|dir...> --model M [--overlay DIR] [--masks DIR] [--json]',
  positionals: { name: '<image|dir...>', description: 'images, or directories searched recursively for them', min: 1 },
  options: {
    model: { type: 'string', required: true, valueName: 'M', description: 'a segmentation checkpoint or zoo entry (effnet-shapes-seg), or a segmenter (unet_efficientnet_b0; random weights unless --weights)' },
    ...MODEL_OPTIONS,
    'num-classes': { type: 'number', integer: true, min: 1, max: 100000, valueName: 'N', description: 'a segmenter architecture without --weights: its classes' },
    size: { type: 'number', integer: true, min: 32, max: 4096, valueName: 'N', description: "the network's input side, a multiple of 32 (128 for bifpnseg; default the model's)" },
    ...BACKEND_OPTIONS,
    batch: { type: 'number', integer: true, min: 1, max: 1024, default: 4, valueName: 'N', description: 'images per run' },
    json: { type: 'boolean', description: 'JSON lines {file, width, height, areas: {class: fraction}}' },
    overlay: { type: 'string', valueName: 'DIR', description: 'write each image with its mask laid over it in colour as DIR/<name>.png' },
    masks: { type: 'string', valueName: 'DIR', description: 'write each index mask (palette PNG, one class index per pixel) as DIR/<name>.png' },
    ...FORCE_OPTION,
  },
  notes: ['Masks have each image\'s own size: the logits are resized back before the argmax.'],
  examples: ['effnet segment scene.png --model effnet-shapes-seg --overlay out/', 'effnet segment photos/ --model runs/seg --masks masks/ --json'],
  async run({ values: v, positionals }, io) {
    const { Segmenter, decodeImage, encodeIndexPng, overlayPng } = await import('@effnet/tasks');
    const files = await expandImagePaths(positionals);
    if (!files.length) throw new EffnetError(`no JPEG, PNG or WebP images in ${positionals.join(', ')}`);
    if (v.overlay !== undefined) await claimOutputDir(v.overlay, { owner: 'effnet segment', force: v.force, flag: '--overlay' });
    if (v.masks !== undefined) await claimOutputDir(v.masks, { owner: 'effnet segment', force: v.force, flag: '--masks' });
    const segmenter = await Segmenter.load(v.model, {
      backend: v.backend as 'onnx' | 'tfjs',
      device: v.device as never,
      threads: v.threads,
      weights: v.weights,
      weightsFormat: v['weights-format'],
      numClasses: v['num-classes'],
      inputSize: v.size,
      batchSize: v.batch,
    });
    try {
      if (segmenter.random) io.progress.write(`effnet: note: ${v.model} has random weights (an architecture without --weights): its masks mean nothing\n`);
      for (const n of segmenter.model.notes) io.progress.write(`effnet: note: ${n}\n`);
      const overlays = new Set<string>();
      const maskNames = new Set<string>();
      const rows: string[][] = [];
      for (let s = 0; s < files.length; s += v.batch) {
        const images = await Promise.all(files.slice(s, s + v.batch).map((f) => decodeImage(f)));
        const results = await segmenter.segmentImages(images);
        for (const [k, r] of results.entries()) {
          const areas = Object.fromEntries(Object.entries(r.areas).map(([c, a]) => [c, Number(a.toFixed(4))]));
          if (v.json) io.out(JSON.stringify({ file: r.name, width: r.width, height: r.height, areas }));
          else rows.push([r.name, `${r.width}x${r.height}`, Object.entries(areas).map(([c, a]) => `${c} ${(100 * a).toFixed(1)}%`).join(', ')]);
          if (v.overlay !== undefined) await overlayPng(images[k]!, r.mask, join(v.overlay, outputName(r.name, overlays)));
          if (v.masks !== undefined) await writeFileAtomic(join(v.masks, outputName(r.name, maskNames)), encodeIndexPng({ data: r.mask, width: r.width, height: r.height }));
        }
      }
      if (!v.json) io.out(formatTable(['image', 'size', 'classes (share of pixels)'], rows));
      if (v.overlay !== undefined) io.progress.write(`effnet: wrote ${files.length} overlay${files.length === 1 ? '' : 's'} in ${v.overlay}\n`);
      if (v.masks !== undefined) io.progress.write(`effnet: wrote ${files.length} index mask${files.length === 1 ? '' : 's'} in ${v.masks}\n`);
      return 0;
    } finally {
      await segmenter.dispose();
    }
  },
});
