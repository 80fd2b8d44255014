import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EffnetError } from '@effnet/core';
import { defineCommand } from '../args.js';
import { formatTable } from '../table.js';
import { BACKEND_OPTIONS } from './common.js';

const IMAGE = /\.(jpe?g|png|webp)$/i;

/** Files as given, directories expanded (sorted, recursively) to the images they hold. */
export async function expandImagePaths(inputs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of inputs) {
    const s = await stat(p).catch(() => null);
    if (!s) throw new EffnetError(`${p}: no such file or directory`);
    if (!s.isDirectory()) {
      out.push(p);
      continue;
    }
    const entries = (await readdir(p, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.isDirectory()) for (const f of await expandImagePaths([join(p, e.name)])) out.push(f);
      else if (IMAGE.test(e.name)) out.push(join(p, e.name));
    }
  }
  return out;
}

export const classifyCommand = defineCommand({
  name: 'classify',
  summary: 'labels for JPEG/PNG/WebP images',
  usage: 'effnet classify <image|dir...> --model M [options]',
  positionals: { name: '<image|dir...>', description: 'images, or directories searched recursively for them', min: 1 },
  options: {
    model: { type: 'string', required: true, valueName: 'M', description: 'a zoo entry (pretrained), a checkpoint or an exported .onnx file' },
    weights: { type: 'string', valueName: 'FILE', description: 'with an architecture as --model (efficientnet_b0): its weight file (.safetensors, .pth, ...)' },
    'weights-format': { type: 'string', valueName: 'NAMES', description: 'how --weights names its tensors (torchvision, timm, keras, ...; default: recognised)' },
    'weights-key': { type: 'string', valueName: 'KEY', description: "the entry of a checkpoint's .pth weights that holds them (default: found)" },
    ...BACKEND_OPTIONS,
    topk: { type: 'number', integer: true, min: 1, max: 1000, default: 5, valueName: 'K', description: 'labels per image' },
    batch: { type: 'number', integer: true, min: 1, max: 4096, valueName: 'N', description: 'images per run, the next batch decoded while one runs (default 2 on a CPU, 16 on a GPU)' },
    resize: { type: 'string', choices: ['fast', 'exact'], default: 'fast', valueName: 'MODE', description: "fast: decode and resize in libvips (default); exact: Pillow's resampling, torchvision's tensor bit for bit" },
    json: { type: 'boolean', description: 'JSON lines instead of a table' },
    'skip-errors': { type: 'boolean', description: 'exit 0 even when some images cannot be read (they are reported either way)' },
  },
  notes: ['Exit codes: 0 every image classified, 1 an error or (without --skip-errors) some images unreadable, 2 a usage mistake.'],
  examples: ['effnet classify photo.jpg --model efficientnet_b0.ra_in1k', 'effnet classify photos/ --model runs/shapes --json --topk 1'],
  async run({ values: v, positionals }, io) {
    const { Classifier } = await import('@effnet/tasks');
    const files = await expandImagePaths(positionals);
    if (!files.length) throw new EffnetError(`no JPEG, PNG or WebP images in ${positionals.join(', ')}`);
    const classifier = await Classifier.load(v.model, { backend: v.backend as 'onnx' | 'tfjs', device: v.device as never, threads: v.threads, weightsKey: v['weights-key'], weights: v.weights, weightsFormat: v['weights-format'] });
    try {
      const { results, errors } = await classifier.classify(files, { topK: v.topk, skipErrors: true, batchSize: v.batch, resize: v.resize as 'fast' | 'exact' });
      if (v.json) {
        for (const r of results) io.out(JSON.stringify({ image: r.name, top: r.top.map((t) => ({ label: t.label, index: t.index, prob: t.prob })) }));
        for (const e of errors) io.out(JSON.stringify({ image: e.name, error: e.error.message }));
      } else {
        const rows = results.flatMap((r) => r.top.map((t, i) => [i === 0 ? r.name : '', i + 1, t.label ?? String(t.index), `${(100 * t.prob).toFixed(1)}%`]));
        if (rows.length) io.out(formatTable(['image', 'rank', 'label', 'probability'], rows));
        for (const e of errors) io.out(`could not read ${e.name}: ${e.error.message}`);
      }
      if (errors.length) io.progress.write(`effnet: ${errors.length} of ${files.length} images could not be read${v['skip-errors'] ? '' : ' (exit code 1; --skip-errors makes it 0)'}\n`);
      return errors.length && !v['skip-errors'] ? 1 : 0;
    } finally {
      await classifier.dispose();
    }
  },
});
