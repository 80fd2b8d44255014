import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { EffnetError, readWeightFile, writeSafetensors } from '@effnet/core';

export const CONVERT_USAGE = `  effnet convert <weights.pth> -o <weights.safetensors> [--weights-key K] [--force]
                                                    a PyTorch checkpoint's weights as safetensors (no Python needed)`;

export interface ConvertOptions {
  input: string;
  output: string;
  /** The checkpoint entry that holds the weights (default: found automatically). */
  weightsKey?: string;
  /** Overwrite an existing output. */
  force: boolean;
}

/** `effnet convert`: the weights of a .pth (or safetensors) file, written as safetensors. Returns lines for the user. */
export async function convertCommand(o: ConvertOptions): Promise<string[]> {
  if (!o.force && (await stat(o.output).catch(() => null))) throw new EffnetError(`${o.output} already exists; pass --force to overwrite it`);
  const w = await readWeightFile(o.input, { weightsKey: o.weightsKey });
  const metadata: Record<string, string> = { ...w.metadata, format: 'pt', 'effnet.source': basename(o.input) };
  if (w.key !== null) metadata['effnet.weights_key'] = w.key;
  await writeSafetensors(o.output, w.tensors, metadata);
  let bytes = 0;
  for (const t of w.tensors.values()) bytes += t.data.byteLength;
  return [`read ${o.input}: ${w.description}`, `wrote ${o.output}: ${w.tensors.size} tensors, ${(bytes / 1e6).toFixed(1)} MB`];
}

export async function convertCli(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' }, 'weights-key': { type: 'string' }, force: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1 || !values.output) throw new EffnetError(`effnet convert needs one input file and -o <output.safetensors>\n\n${CONVERT_USAGE}`);
  const lines = await convertCommand({ input: positionals[0]!, output: values.output, weightsKey: values['weights-key'], force: values.force! });
  lines.forEach((l) => out(l));
  return 0;
}
