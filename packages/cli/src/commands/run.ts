import { getBackend, InvalidSpecError, readNpy, writeNpy } from '@effnet/core';
import { loadModel } from '../model-source.js';

export interface RunOptions {
  variant: string;
  weights?: string;
  weightsFormat?: string;
  /** For a .pth checkpoint: the entry that holds the weights. */
  weightsKey?: string;
  input: string;
  output: string;
  backend: string;
  device?: string;
  threads?: number;
}

/** `effnet run`: logits for an .npy batch, written as .npy. Returns lines for the user. */
export async function runCommand(o: RunOptions): Promise<string[]> {
  const x = await readNpy(o.input);
  if (x.shape.length !== 4) throw new InvalidSpecError('--input', o.input, `an NCHW float32 batch [N, 3, H, W]; this file has shape [${x.shape.join(', ')}]`);
  const [, , h, w] = x.shape as [number, number, number, number];
  const m = await loadModel({ variant: o.variant, weights: o.weights, weightsFormat: o.weightsFormat, weightsKey: o.weightsKey, inputResolution: [h, w] });
  const backend = await getBackend(o.backend);
  const runner = await backend.load(m.graph, m.weights, { device: (o.device ?? 'cpu') as never, threads: o.threads });
  try {
    const out = await runner.run(x.dtype === 'float32' ? x : { ...x, dtype: 'float32', data: Float32Array.from(x.data as Float64Array) });
    const logits = out[m.graph.outputs[0]!]!;
    await writeNpy(o.output, logits);
    const lines = [`wrote ${o.output}: ${m.graph.outputs[0]} [${logits.shape.join(', ')}] on ${o.backend} (${runner.device}${runner.notes.length ? `; ${runner.notes.join('; ')}` : ''})`];
    if (m.random) lines.unshift('note: no --weights given, so the model has a random initialisation');
    if (m.weightsDescription) lines.unshift(`read ${o.weights}: ${m.weightsDescription}`);
    return lines;
  } finally {
    await runner.dispose();
  }
}
