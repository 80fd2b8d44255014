/** EfficientDet raw-head parity with effdet, shared by the backends' tests. */
import { type Backend, buildEfficientDet, detectorConfig, type FusionMethod, type LoadOptions, readNpy, readSafetensors, specFor, toCanonicalNames } from '@effnet/core';
import { effdetFixture, maxDiff } from './peers.js';

export interface EffdetCase {
  model: string;
  /** effdet's config image size (effdet's upsampling is sized for it); default the config's. */
  imageSize?: [number, number];
  /** Override the config's fusion: effdet's fpn_name for the fixture, effnet's fusion for the graph. */
  fusion?: { effdet: 'bifpn_fa' | 'bifpn_attn' | 'bifpn_sum'; effnet: FusionMethod };
  /** Build the graph with a dynamic input size instead of the fixture's. */
  dynamic?: boolean;
}

/**
 * The parity cases both backends run: TF SAME and PyTorch padding, every fusion (fast, softmax, sum), swish and
 * ReLU6, default, other and non-square sizes, odd level sizes (Lite0 at 320: 40, 20, 10, 5, 3), a dynamic-size graph.
 */
export const EFFDET_CASES: [string, EffdetCase][] = [
  ['tf_efficientdet_d0 at 512 (TF SAME, fast fusion)', { model: 'tf_efficientdet_d0' }],
  ['tf_efficientdet_d0 at 256x320 with softmax fusion (bifpn_attn)', { model: 'tf_efficientdet_d0', imageSize: [256, 320], fusion: { effdet: 'bifpn_attn', effnet: 'softmax' } }],
  ['efficientdet_d0 at 384 (PyTorch padding, no redundant bias), dynamic-size graph', { model: 'efficientdet_d0', imageSize: [384, 384], dynamic: true }],
  ['tf_efficientdet_lite0 at 320 (ReLU6, sum fusion, odd level sizes)', { model: 'tf_efficientdet_lite0' }],
];

export interface OutputDiff {
  name: string;
  diff: number;
  scale: number;
  /** diff / scale. */
  relative: number;
  /** The same measure for effdet's own float32 forward (the reference is its float64 one). */
  effdetFloat32: number;
}

/**
 * Builds effnet's graph for the case, loads effdet's weights (random, non-trivial, saved under effdet's names) through
 * the "effdet" naming, runs effdet's input on `backend` and compares every raw output with effdet's (its float64
 * forward, so that only effnet's float32 error is measured; effdet's own float32 forward is reported beside it).
 */
export async function effdetParity(backend: Backend, c: EffdetCase, options: LoadOptions & Record<string, unknown> = {}): Promise<OutputDiff[]> {
  const fx = effdetFixture(c.model, { imageSize: c.imageSize, fpnName: c.fusion?.effdet });
  const config = { ...detectorConfig(c.model), ...(c.fusion ? { fusion: c.fusion.effnet } : {}) };
  const graph = buildEfficientDet(config, { inputResolution: c.dynamic ? null : fx.meta.image_size });
  const weights = toCanonicalNames('effdet', specFor(config.backbone), (await readSafetensors(fx.weights)).tensors);
  const runner = await backend.load(graph, weights, options);
  let outputs;
  try {
    outputs = await runner.run(await readNpy(fx.input));
  } finally {
    await runner.dispose();
  }
  const diffs: OutputDiff[] = [];
  for (const [name, file] of Object.entries(fx.outputs)) {
    const want = await readNpy(file);
    const got = outputs[name];
    if (!got) throw new Error(`${c.model}: effnet has no output "${name}" (outputs: ${Object.keys(outputs).join(', ')})`);
    if (got.shape.join() !== want.shape.join()) throw new Error(`${c.model} ${name}: shape [${got.shape}] != effdet's [${want.shape}]`);
    // The outputs must depend on the input, or the comparison proves little.
    const sensitivity = fx.meta.outputs[name]!.input_sensitivity ?? 0;
    if (!(sensitivity > 1e-2)) throw new Error(`${c.model} ${name}: effdet's outputs barely depend on the input (${sensitivity}); fix the fixture`);
    const { diff, scale } = maxDiff(got.data as Float32Array, want.data as Float32Array);
    diffs.push({ name, diff, scale, relative: diff / scale, effdetFloat32: fx.meta.outputs[name]!.float32_error });
  }
  if (diffs.length !== graph.outputs.length) throw new Error(`${c.model}: effdet has ${diffs.length} outputs, effnet ${graph.outputs.length}`);
  return diffs;
}

/** One line for the test log: the worst output. */
export function describeDiffs(label: string, diffs: OutputDiff[]): string {
  const worst = diffs.reduce((a, b) => (b.relative > a.relative ? b : a));
  const torch = Math.max(...diffs.map((d) => d.effdetFloat32));
  return `${label}: worst ${worst.name} max|diff| ${worst.diff.toExponential(2)} of max|value| ${worst.scale.toFixed(2)} (relative ${worst.relative.toExponential(2)}; effdet's own float32: ${torch.toExponential(2)})`;
}
