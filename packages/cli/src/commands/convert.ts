import { basename } from 'node:path';
import { checkOutputFile, readWeightFile, writeSafetensors } from '@effnet/core';
import { defineCommand } from '../args.js';
import { FORCE_OPTION } from './common.js';

export interface ConvertOptions {
  input: string;
  output: string;
  /** The checkpoint entry that holds the weights (default: found automatically). */
  weightsKey?: string;
  /** Overwrite an existing output. */
  force?: boolean;
}

/** The weights of a .pth (or safetensors) file, written as safetensors. Returns lines for the user. */
export async function convertWeights(o: ConvertOptions): Promise<string[]> {
  await checkOutputFile(o.output, { force: o.force, flag: '-o' });
  const w = await readWeightFile(o.input, { weightsKey: o.weightsKey });
  const metadata: Record<string, string> = { ...w.metadata, format: 'pt', 'effnet.source': basename(o.input) };
  if (w.key !== null) metadata['effnet.weights_key'] = w.key;
  await writeSafetensors(o.output, w.tensors, metadata);
  let bytes = 0;
  for (const t of w.tensors.values()) bytes += t.data.byteLength;
  return [`read ${o.input}: ${w.description}`, `wrote ${o.output}: ${w.tensors.size} tensors, ${(bytes / 1e6).toFixed(1)} MB`];
}

export const convertCommand = defineCommand({
  name: 'convert',
  summary: "a PyTorch checkpoint's weights as safetensors (no Python needed)",
  usage: 'effnet convert <weights.pth> -o <weights.safetensors> [--weights-key K] [--force]',
  positionals: { name: '<weights.pth>', description: 'a torch.save file (zip or legacy format), or a safetensors file', min: 1, max: 1 },
  options: {
    output: { type: 'string', short: 'o', required: true, valueName: 'FILE', description: 'the .safetensors file to write' },
    'weights-key': { type: 'string', valueName: 'KEY', description: 'the checkpoint entry that holds the weights (default: found, and said)' },
    ...FORCE_OPTION,
  },
  notes: ['Only tensors and plain containers are read: any other Python object in the file is refused, and nothing in it runs.'],
  examples: ['effnet convert efficientnet_b0_rwightman-7f5810bc.pth -o b0.safetensors', 'effnet convert checkpoint.pth.tar -o model.safetensors --weights-key state_dict_ema'],
  async run({ values: v, positionals }, io) {
    (await convertWeights({ input: positionals[0]!, output: v.output, weightsKey: v['weights-key'], force: v.force })).forEach((l) => io.out(l));
    return 0;
  },
});
