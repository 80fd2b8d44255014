import { join } from 'node:path';
import { checkOutputFile, claimOutputDir, InvalidSpecError, type LoadOptions, readNpy, writeNpy } from '@effnet/core';
import { defineCommand } from '../args.js';
import { BACKEND_OPTIONS, FORCE_OPTION, MODEL_HELP, MODEL_OPTIONS } from './common.js';

export const runCommand = defineCommand({
  name: 'run',
  summary: "a model's raw outputs for an NCHW batch in an .npy file",
  usage: 'effnet run --model M --input x.npy --output y.npy [options]',
  options: {
    model: { type: 'string', required: true, valueName: 'M', description: 'checkpoint, exported .onnx file, variant or zoo entry' },
    ...MODEL_OPTIONS,
    'num-classes': { type: 'number', integer: true, min: 1, max: 100000, valueName: 'N', description: "a segmenter architecture without --weights: the head's classes (default 1, as smp)" },
    input: { type: 'string', required: true, valueName: 'FILE', description: 'an [N, 3, H, W] batch (.npy; any float or integer dtype)' },
    output: { type: 'string', required: true, valueName: 'PATH', description: 'the .npy to write, or a directory for a model with several outputs' },
    ...BACKEND_OPTIONS,
    ...FORCE_OPTION,
  },
  notes: [MODEL_HELP],
  examples: ['effnet run --model efficientnet_b0.ra_in1k --input x.npy --output logits.npy', 'effnet run --model efficientnet_b0 --weights tv.safetensors --weights-format torchvision --input x.npy --output y.npy',
    'effnet run --model unet_efficientnet_b1 --num-classes 4 --weights smp.pth --weights-format smp --input x.npy --output y.npy'],
  async run({ values: v }, io) {
    const { loadModelWeights, loadRunner } = await import('@effnet/tasks');
    const x = await readNpy(v.input);
    if (x.shape.length !== 4) throw new InvalidSpecError('--input', v.input, `an NCHW batch [N, 3, H, W]; this file has shape [${x.shape.join(', ')}]`);
    const [, , h, w] = x.shape as [number, number, number, number];
    const m = await loadModelWeights(v.model, { weights: v.weights, weightsFormat: v['weights-format'], weightsKey: v['weights-key'], inputResolution: [h, w], numClasses: v['num-classes'] });
    const several = m.graph.outputs.length > 1;
    if (several && v.output.endsWith('.npy'))
      throw new InvalidSpecError('--output', v.output, `a directory: ${m.graph.name} has ${m.graph.outputs.length} outputs (${m.graph.outputs.join(', ')}), written as <dir>/<output>.npy`);
    if (several) await claimOutputDir(v.output, { owner: 'effnet run', force: v.force, flag: '--output' });
    else await checkOutputFile(v.output, { force: v.force, flag: '--output' });
    const options: LoadOptions = { device: (v.device ?? (v.backend === 'onnx' ? 'cpu' : 'auto')) as LoadOptions['device'], threads: v.threads, allowNonFinite: v['allow-nan'] };
    const runner = await loadRunner(m, { ...options, backend: v.backend });
    try {
      const outputs = await runner.run(x);
      const where = `on ${v.backend} (${runner.device}${runner.notes.length ? `; ${runner.notes.join('; ')}` : ''})`;
      if (m.random) io.out('note: no --weights given, so the model has a random initialisation');
      for (const n of m.notes) io.out(`note: ${n}`);
      if (several) io.out(`wrote ${m.graph.outputs.length} outputs to ${v.output}/ ${where}:`);
      for (const name of m.graph.outputs) {
        const t = outputs[name]!;
        if (several) {
          await writeNpy(join(v.output, `${name}.npy`), t);
          io.out(`  ${name}.npy [${t.shape.join(', ')}]`);
        } else {
          await writeNpy(v.output, t);
          io.out(`wrote ${v.output}: ${name} [${t.shape.join(', ')}] ${where}`);
        }
      }
      return 0;
    } finally {
      await runner.dispose();
    }
  },
});
