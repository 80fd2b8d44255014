/**
 * Classification parity with timm (../shared/peers), shared by the backends' tests: every variant family timm and
 * effnet share, at odd input sizes and at the sizes a report questioned. The reference is scripts/timm_reference.py:
 * timm's own model with random weights and calibrated, perturbed BatchNorm statistics, weights rounded to float16 so
 * that the file holds exactly the weights the logits came from.
 */
import { createHash } from 'node:crypto';
import { type Backend, buildEfficientNet, type LoadOptions, readNpy, readSafetensors, specFor } from '@effnet/core';
import { maxDiff, scriptFixture } from './peers.js';

/** One timm model per family and size rule: V1 (PyTorch and TF conventions), Lite, V2 (S and the B0-B3 table). */
export const TIMM_FAMILIES = [
  'efficientnet_b0',
  'efficientnet_b2',
  'tf_efficientnet_b0',
  'tf_efficientnet_b3',
  'efficientnet_lite0',
  'tf_efficientnet_lite2',
  'efficientnetv2_s',
  'tf_efficientnetv2_s',
  'tf_efficientnetv2_b0',
  'tf_efficientnetv2_b1',
  'tf_efficientnetv2_b2',
  'tf_efficientnetv2_b3',
] as const;

export interface TimmCase {
  models: readonly string[];
  res: number;
}

/** Odd sizes (SAME padding's uneven halves at every stride) for every family; 224 and 240 for V2-B1..B3. */
export const TIMM_CASES: TimmCase[] = [
  { models: TIMM_FAMILIES, res: 97 },
  { models: ['tf_efficientnet_b0', 'efficientnet_b0', 'tf_efficientnetv2_b0', 'tf_efficientnetv2_s'], res: 131 },
  { models: ['tf_efficientnetv2_b1', 'tf_efficientnetv2_b2', 'tf_efficientnetv2_b3'], res: 224 },
  { models: ['tf_efficientnetv2_b1'], res: 240 },
];

export interface TimmFixture {
  dir: string;
  models: readonly string[];
  res: number;
}

export function timmFixture(c: TimmCase): TimmFixture {
  const key = createHash('sha256').update(c.models.join(',')).digest('hex').slice(0, 10);
  const dir = scriptFixture('scripts/timm_reference.py', ['timm', c.res, key], (out) => [out, '--res', String(c.res), '--models', c.models.join(',')]);
  return { dir, models: c.models, res: c.res };
}

/** max |effnet - timm| / max |timm| per model of a fixture, on `backend`. */
export async function timmParity(backend: Backend, fx: TimmFixture, o: LoadOptions = {}): Promise<{ model: string; relative: number }[]> {
  const input = await readNpy(`${fx.dir}/input.npy`);
  const logits = await readNpy(`${fx.dir}/logits.npy`);
  const per = logits.data.length / fx.models.length;
  const out: { model: string; relative: number }[] = [];
  for (const [i, model] of fx.models.entries()) {
    const { tensors } = await readSafetensors(`${fx.dir}/${model}.safetensors`);
    const graph = buildEfficientNet(specFor(model), { inputResolution: fx.res });
    const runner = await backend.load(graph, tensors, o);
    try {
      const got = (await runner.run(input)).logits!.data as Float32Array;
      const { diff, scale } = maxDiff(got, (logits.data as Float32Array).subarray(i * per, (i + 1) * per));
      out.push({ model, relative: diff / scale });
    } finally {
      await runner.dispose();
    }
  }
  return out;
}
