import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EffnetError, getBackend, InvalidSpecError, readNpy, type Tensor, writeNpy } from '@effnet/core';
import { loadModel } from '../model-source.js';

export interface RunOptions {
  variant: string;
  weights?: string;
  weightsFormat?: string;
  input: string;
  /** A .npy file for a one-output graph; a directory (one <output>.npy each) for several outputs. */
  output: string;
  backend: string;
  device?: string;
  threads?: number;
  /** Write into an existing non-empty output directory. */
  force?: boolean;
}

/**
 * Writes every output as DIR/<name>.npy (each file atomically). DIR is created when missing; an existing directory
 * with files in it is refused unless `force`, so that a run never mixes its outputs with another's.
 */
async function writeOutputDir(dir: string, outputs: [string, Tensor][], force: boolean): Promise<void> {
  const info = await stat(dir).catch(() => null);
  if (info && !info.isDirectory()) throw new InvalidSpecError('--output', dir, `a directory for the graph's ${outputs.length} outputs (one <output>.npy each); this is a file`);
  if (info && !force && (await readdir(dir)).length > 0)
    throw new EffnetError(`--output ${dir} is a directory with files in it; name a new or empty directory, or pass --force to overwrite its <output>.npy files`);
  await mkdir(dir, { recursive: true });
  for (const [name, t] of outputs) {
    if (!/^[\w.-]+$/.test(name)) throw new InvalidSpecError('graph output name', name, 'letters, digits, "_", "." or "-" to be a file name');
    await writeNpy(join(dir, `${name}.npy`), t);
  }
}

/** `effnet run`: the outputs for an .npy batch, written as .npy (one file, or a directory of them). Returns lines for the user. */
export async function runCommand(o: RunOptions): Promise<string[]> {
  const x = await readNpy(o.input);
  if (x.shape.length !== 4) throw new InvalidSpecError('--input', o.input, `an NCHW float32 batch [N, 3, H, W]; this file has shape [${x.shape.join(', ')}]`);
  const [, , h, w] = x.shape as [number, number, number, number];
  const m = await loadModel({ variant: o.variant, weights: o.weights, weightsFormat: o.weightsFormat, inputResolution: [h, w] });
  const names = m.graph.outputs;
  if (names.length > 1 && o.output.endsWith('.npy'))
    throw new InvalidSpecError('--output', o.output, `a directory: ${m.graph.name} has ${names.length} outputs (${names.join(', ')}), written as <dir>/<output>.npy`);
  const backend = await getBackend(o.backend);
  const runner = await backend.load(m.graph, m.weights, { device: (o.device ?? 'cpu') as never, threads: o.threads });
  try {
    const out = await runner.run(x.dtype === 'float32' ? x : { ...x, dtype: 'float32', data: Float32Array.from(x.data as Float64Array) });
    const where = `on ${o.backend} (${runner.device}${runner.notes.length ? `; ${runner.notes.join('; ')}` : ''})`;
    const lines: string[] = [];
    if (names.length === 1) {
      const t = out[names[0]!]!;
      await writeNpy(o.output, t);
      lines.push(`wrote ${o.output}: ${names[0]} [${t.shape.join(', ')}] ${where}`);
    } else {
      const tensors = names.map((n): [string, Tensor] => [n, out[n]!]);
      await writeOutputDir(o.output, tensors, o.force ?? false);
      lines.push(`wrote ${names.length} outputs to ${o.output}/ ${where}:`, ...tensors.map(([n, t]) => `  ${n}.npy [${t.shape.join(', ')}]`));
    }
    if (m.random) lines.unshift('note: no --weights given, so the model has a random initialisation');
    return lines;
  } finally {
    await runner.dispose();
  }
}
