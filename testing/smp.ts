/** Segmenter parity with segmentation_models_pytorch (smp), shared by the backends' tests. */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { type Backend, buildSegmenter, type LoadOptions, readNpy, readSafetensors, segmenterConfig, specFor, toCanonicalNames } from '@effnet/core';
import { maxDiff, scriptFixture } from './peers.js';

/** The three decoders on the timm-efficientnet-b0 encoder, and automl's head on effdet's d0 (scripts/smp_reference.py), 3 classes, 128 px, batch 2. */
export const SMP_CASES = ['unet_efficientnet_b0', 'fpn_efficientnet_b0', 'deeplabv3plus_efficientnet_b0', 'bifpnseg_efficientdet_d0'] as const;

export interface SmpFixture {
  weights: string;
  input: string;
  logits: string;
  meta: { size: number; classes: number; max_abs: number; input_sensitivity: number | null; float32_error: number };
}

/** scripts/smp_reference.py's fixture: smp's model with random, non-trivial weights, an input and its logits (float64). */
export function smpFixture(model: string, opts: { size?: number; classes?: number } = {}): SmpFixture {
  const size = opts.size ?? 128;
  const classes = opts.classes ?? 3;
  const dir = scriptFixture('scripts/smp_reference.py', ['smp', model, size, classes], (out) => ['fixture', '--model', model, '--out', out, '--size', String(size), '--classes', String(classes)]);
  return { weights: join(dir, 'weights.safetensors'), input: join(dir, 'input.npy'), logits: join(dir, 'logits.npy'), meta: JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) };
}

/**
 * Builds effnet's segmenter, loads smp's weights through the "smp" naming, runs smp's input on `backend` and compares
 * the logits with smp's float64 forward: { diff: max |ours - smp|, scale: max |smp|, float32: smp's own float32 error }.
 */
export async function smpParity(backend: Backend, model: string, options: LoadOptions & Record<string, unknown> = {}): Promise<{ diff: number; scale: number; relative: number; smpFloat32: number }> {
  const fx = smpFixture(model);
  const config = segmenterConfig(model);
  const graph = buildSegmenter(config, { numClasses: fx.meta.classes, inputResolution: fx.meta.size });
  const weights = toCanonicalNames('smp', specFor(config.encoder), (await readSafetensors(fx.weights)).tensors);
  const runner = await backend.load(graph, weights, options);
  let got;
  try {
    got = (await runner.run(await readNpy(fx.input))).logits!;
  } finally {
    await runner.dispose();
  }
  const want = await readNpy(fx.logits);
  if (got.shape.join() !== want.shape.join()) throw new Error(`${model}: logits [${got.shape}] != smp's [${want.shape}]`);
  if (!((fx.meta.input_sensitivity ?? 0) > 1e-2)) throw new Error(`${model}: smp's logits barely depend on the input; fix the fixture`);
  const { diff, scale } = maxDiff(got.data as Float32Array, want.data as Float32Array);
  return { diff, scale, relative: diff / scale, smpFloat32: fx.meta.float32_error };
}
