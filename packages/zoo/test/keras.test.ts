import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackend } from '@effnet/backend-onnx';
import { type EfficientNetSpec, float32Tensor, InvalidSpecError, specFor, type Tensor, type TensorMap, TensorFileError, WeightMismatchError } from '@effnet/core';
import h5wasm from 'h5wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromKeras, kerasGeneration, kerasLayerTargets, permute } from '@effnet/core';
import { loadPretrained, readKerasH5 } from '../src/index.js';
import { cleanEnv, randomInput, removeTempDirs, sha256, smallModel, tempDir, testWeights } from './helpers.js';

/** OIHW -> HWIO, [C, 1, H, W] -> [H, W, C, 1], [out, in] -> [in, out], written out longhand (independent of `permute`). */
function toKeras(kind: 'conv' | 'depthwise' | 'dense', t: Tensor): { shape: number[]; data: Float32Array } {
  const src = t.data as Float32Array;
  if (kind === 'dense') {
    const [o, i] = t.shape as [number, number];
    const out = new Float32Array(src.length);
    for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) out[b * o + a] = src[a * i + b]!;
    return { shape: [i, o], data: out };
  }
  const [o, i, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(src.length);
  if (kind === 'conv') {
    for (let a = 0; a < o; a++)
      for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((y * w + x) * i + b) * o + a] = src[((a * i + b) * h + y) * w + x]!;
    return { shape: [h, w, i, o], data: out };
  }
  // depthwise: [C, 1, H, W] -> [H, W, C, 1]
  for (let c = 0; c < o; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[(y * w + x) * o + c] = src[(c * h + y) * w + x]!;
  return { shape: [h, w, o, 1], data: out };
}

interface KerasLayer {
  name: string;
  vars: { name: string; shape: number[]; data: Float32Array | BigInt64Array }[];
}

/** Builders of Keras layers holding our canonical weights in Keras layouts. */
function layerMakers(w: TensorMap) {
  const get = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`no ${n}`);
    return t;
  };
  const conv = (layer: string, ours: string, bias = false): KerasLayer => ({
    name: layer,
    vars: [{ name: 'kernel', ...toKeras('conv', get(`${ours}.weight`)) }, ...(bias ? [{ name: 'bias', shape: get(`${ours}.bias`).shape, data: get(`${ours}.bias`).data as Float32Array }] : [])],
  });
  const depthwise = (layer: string, ours: string): KerasLayer => ({ name: layer, vars: [{ name: 'depthwise_kernel', ...toKeras('depthwise', get(`${ours}.weight`)) }] });
  const bn = (layer: string, ours: string): KerasLayer => ({
    name: layer,
    vars: (
      [
        ['gamma', 'weight'],
        ['beta', 'bias'],
        ['moving_mean', 'running_mean'],
        ['moving_variance', 'running_var'],
      ] as const
    ).map(([k, o]) => ({ name: k, shape: get(`${ours}.${o}`).shape, data: get(`${ours}.${o}`).data as Float32Array })),
  });
  const none = (name: string): KerasLayer => ({ name, vars: [] });
  const se = (k: string, p: string): KerasLayer[] => [
    none(`${k}se_squeeze`),
    none(`${k}se_reshape`),
    conv(`${k}se_reduce`, `${p}.se.conv_reduce`, true),
    conv(`${k}se_expand`, `${p}.se.conv_expand`, true),
    none(`${k}se_excite`),
  ];
  const normalization: KerasLayer = {
    name: 'normalization',
    vars: [
      { name: 'mean', shape: [3], data: Float32Array.from([0.485, 0.456, 0.406]) },
      { name: 'variance', shape: [3], data: Float32Array.from([0.229, 0.224, 0.225]) },
      { name: 'count', shape: [], data: BigInt64Array.of(0n) },
    ],
  };
  const top = (): KerasLayer[] => [
    conv('top_conv', 'conv_head'),
    bn('top_bn', 'bn2'),
    none('top_activation'),
    none('avg_pool'),
    none('top_dropout'),
    {
      name: 'predictions',
      vars: [
        { name: 'kernel', ...toKeras('dense', get('classifier.weight')) },
        { name: 'bias', shape: get('classifier.bias').shape, data: get('classifier.bias').data as Float32Array },
      ],
    },
  ];
  return { conv, depthwise, bn, none, se, normalization, top };
}

/** Keras' EfficientNet layer list for a V1 spec, as keras.applications builds it, with our canonical weights in Keras layouts. */
function kerasLayers(spec: EfficientNetSpec, w: TensorMap): KerasLayer[] {
  const { conv, depthwise, bn, none, se, normalization, top } = layerMakers(w);
  const layers: KerasLayer[] = [
    none('input_1'),
    none('rescaling'),
    normalization,
    none('rescaling_1'),
    none('stem_conv_pad'),
    conv('stem_conv', 'conv_stem'),
    bn('stem_bn', 'bn1'),
    none('stem_activation'),
  ];
  spec.stages.forEach((st, i) => {
    for (let j = 0; j < st.repeats; j++) {
      const k = `block${i + 1}${String.fromCharCode(97 + j)}_`;
      const p = `blocks.${i}.${j}`;
      const ds = st.block.expand === 1;
      if (!ds) layers.push(conv(`${k}expand_conv`, `${p}.conv_pw`), bn(`${k}expand_bn`, `${p}.bn1`), none(`${k}expand_activation`));
      if (st.block.stride === 2 && j === 0) layers.push(none(`${k}dwconv_pad`));
      layers.push(depthwise(`${k}dwconv`, `${p}.conv_dw`));
      layers.push(bn(`${k}bn`, `${p}.${ds ? 'bn1' : 'bn2'}`), none(`${k}activation`), ...se(k, p));
      layers.push(conv(`${k}project_conv`, `${p}.${ds ? 'conv_pw' : 'conv_pwl'}`), bn(`${k}project_bn`, `${p}.${ds ? 'bn2' : 'bn3'}`));
      if (j > 0) layers.push(none(`${k}drop`), none(`${k}add`));
    }
  });
  return [...layers, ...top()];
}

/**
 * Keras' EfficientNetV2 layer list (keras/src/applications/efficientnet_v2.py: MBConvBlock, FusedMBConvBlock), written
 * out here from Keras' source independently of the converter's table. B0-B3 carry a Normalization layer; S/M/L only a
 * weightless Rescaling.
 */
function kerasV2Layers(spec: EfficientNetSpec, w: TensorMap, o: { normalization: boolean }): KerasLayer[] {
  const { conv, depthwise, bn, none, se, normalization, top } = layerMakers(w);
  const layers: KerasLayer[] = [none('input_1'), none('rescaling'), ...(o.normalization ? [normalization] : []), conv('stem_conv', 'conv_stem'), bn('stem_bn', 'bn1'), none('stem_activation')];
  spec.stages.forEach((st, i) => {
    for (let j = 0; j < st.repeats; j++) {
      const k = `block${i + 1}${String.fromCharCode(97 + j)}_`;
      const p = `blocks.${i}.${j}`;
      const hasSe = st.block.seRatio > 0;
      if (st.block.type === 'fused') {
        if (st.block.expand !== 1) {
          // expand_conv: the kxk conv with the block's stride; project_conv: 1x1.
          layers.push(conv(`${k}expand_conv`, `${p}.conv_exp`), bn(`${k}expand_bn`, `${p}.bn1`), none(`${k}expand_activation`));
          if (hasSe) layers.push(...se(k, p));
          layers.push(conv(`${k}project_conv`, `${p}.conv_pwl`), bn(`${k}project_bn`, `${p}.bn2`));
        } else {
          // expand 1: project_conv is the block's only (kxk) conv, followed by its activation.
          layers.push(conv(`${k}project_conv`, `${p}.conv`), bn(`${k}project_bn`, `${p}.bn1`), none(`${k}project_activation`));
        }
      } else {
        layers.push(conv(`${k}expand_conv`, `${p}.conv_pw`), bn(`${k}expand_bn`, `${p}.bn1`), none(`${k}expand_activation`));
        layers.push(depthwise(`${k}dwconv2`, `${p}.conv_dw`), bn(`${k}bn`, `${p}.bn2`), none(`${k}activation`));
        if (hasSe) layers.push(...se(k, p));
        layers.push(conv(`${k}project_conv`, `${p}.conv_pwl`), bn(`${k}project_bn`, `${p}.bn3`));
      }
      if (j > 0) layers.push(none(`${k}drop`), none(`${k}add`));
    }
  });
  return [...layers, ...top()];
}

/** Writes Keras 2's h5 layout: [model_weights/]<layer>/<layer>/<var>:0, with layer_names and weight_names attributes. */
async function writeKerasH5(file: string, layers: KerasLayer[], o: { fullModel: boolean }): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'w');
  const root = o.fullModel ? f.create_group('model_weights') : f;
  if (o.fullModel) f.create_attribute('model_config', '{"class_name": "Functional"}');
  root.create_attribute('layer_names', layers.map((l) => l.name), null, 'S40');
  root.create_attribute('backend', 'tensorflow');
  root.create_attribute('keras_version', '2.15.0');
  for (const l of layers) {
    const g = root.create_group(l.name);
    g.create_attribute('weight_names', l.vars.map((v) => `${l.name}/${v.name}:0`), l.vars.length ? null : [0], 'S80');
    if (!l.vars.length) continue;
    const inner = g.create_group(l.name);
    for (const v of l.vars) inner.create_dataset({ name: `${v.name}:0`, data: v.data, shape: v.shape, dtype: v.data instanceof BigInt64Array ? '<q' : '<f' });
  }
  f.close();
}

const dir = tempDir();
const x = randomInput([1, 3, 32, 32], 5);
let want: Float32Array;
const small = smallModel('efficientnet_b0', 'keras');
const weights = testWeights(small.graph, 9);

/** Loads a Keras .h5 file of `dir` as a user's registry entry would (10 classes, 32 px). */
async function loadKerasFile(file: string, arch: string) {
  const registry = join(dir, `${file}.registry.json`);
  const entry = { name: `tiny.${arch}`, arch, family: 'keras', format: 'h5', url: file, sha256: sha256(readFileSync(join(dir, file))), preprocessing: { inputSize: 32 }, numClasses: 10 };
  writeFileSync(registry, JSON.stringify({ entries: [entry] }));
  return loadPretrained(entry.name, { registry, env: cleanEnv(), cacheDir: tempDir(), backend: new OnnxBackend(), threads: 1 });
}

beforeAll(async () => {
  const runner = await new OnnxBackend().load(small.graph, weights, { threads: 1 });
  want = (await runner.run(x)).logits!.data as Float32Array;
  await runner.dispose();
  await writeKerasH5(join(dir, 'b0_weights.h5'), kerasLayers(small.spec, weights), { fullModel: false });
  await writeKerasH5(join(dir, 'b0_model.h5'), kerasLayers(small.spec, weights), { fullModel: true });
});

describe('the Keras converter', () => {
  it('permute moves axes', () => {
    const t = float32Tensor([2, 3], Float32Array.from([1, 2, 3, 4, 5, 6]));
    expect(permute(t, [1, 0])).toEqual(float32Tensor([3, 2], Float32Array.from([1, 4, 2, 5, 3, 6])));
    const u = float32Tensor([1, 2, 2, 3], Float32Array.from({ length: 12 }, (_, i) => i));
    const p = permute(u, [3, 2, 0, 1]);
    expect(p.shape).toEqual([3, 2, 1, 2]);
    // out[c, b, 0, a] = in[0, a, b, c]
    expect((p.data as Float32Array)[1 * 4 + 0 * 2 + 1]).toBe(1 * 6 + 0 * 3 + 1);
  });

  it('maps every tensor of a Keras EfficientNet-B0 file to the canonical names and layouts, and drops the input preprocessing', async () => {
    for (const file of ['b0_weights.h5', 'b0_model.h5']) {
      const raw = await readKerasH5(join(dir, file));
      const { tensors, notes } = fromKeras(small.spec, raw);
      expect([...tensors.keys()].sort()).toEqual(small.graph.parameters.map((p) => p.name).sort());
      // Byte-exact (a deep equal over millions of floats would be slow).
      for (const [name, t] of weights) {
        const got = tensors.get(name)!;
        expect(got.shape, name).toEqual(t.shape);
        expect(Buffer.compare(Buffer.from((got.data as Float32Array).buffer, got.data.byteOffset, got.data.byteLength), Buffer.from((t.data as Float32Array).buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(0);
      }
      expect(notes).toEqual([
        'dropped Keras input-preprocessing layer "normalization" (mean [3] = [0.485, 0.456, 0.406]; variance [3] = [0.229, 0.224, 0.225]; count [] = [0]); effnet graphs take normalized input',
      ]);
    }
  });

  it('the converted model runs and equals a direct load of the same weights', async () => {
    const m = await loadKerasFile('b0_model.h5', 'efficientnet_b0');
    expect(m.spec).toMatchObject({ padding: 'same', bnEps: 1e-3 });
    expect(m.notes[0]).toMatch(/dropped Keras input-preprocessing layer "normalization"/);
    const got = (await m.run(x)).data as Float32Array;
    await m.dispose();
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('a Keras file that does not fit names every missing and unexpected tensor', async () => {
    const layers = kerasLayers(small.spec, weights).filter((l) => l.name !== 'block2b_se_reduce');
    layers.push({ name: 'mystery_dense', vars: [{ name: 'kernel', shape: [2, 2], data: new Float32Array(4) }] });
    const file = join(dir, 'broken.h5');
    await writeKerasH5(file, layers, { fullModel: false });
    const { tensors } = fromKeras(small.spec, await readKerasH5(file));
    const registry = join(dir, 'broken.json');
    writeFileSync(
      registry,
      JSON.stringify({ entries: [{ name: 'broken.keras', arch: 'efficientnet_b0', family: 'keras', format: 'h5', url: 'broken.h5', sha256: sha256(readFileSync(file)), preprocessing: { inputSize: 32 }, numClasses: 10 }] }),
    );
    expect(tensors.has('mystery_dense/kernel')).toBe(true);
    const err = await loadPretrained('broken.keras', { registry, env: cleanEnv(), cacheDir: tempDir(), backend: new OnnxBackend() }).catch((e) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect((err as WeightMismatchError).missing).toEqual(['blocks.1.1.se.conv_reduce.weight', 'blocks.1.1.se.conv_reduce.bias']);
    expect((err as WeightMismatchError).unexpected).toEqual(['mystery_dense/kernel']);
  });

  it('says what is wrong with files it cannot read, without printing', async () => {
    const bogus = join(dir, 'bogus.h5');
    writeFileSync(bogus, 'not an hdf5 file at all');
    const err = await readKerasH5(bogus).catch((e) => e);
    expect(err).toBeInstanceOf(TensorFileError);
    expect(err.message).toMatch(/bogus\.h5: is not a readable HDF5 file \(unable to .*open file/);
  });

  it('refuses a spec with a block Keras never builds (a V2 spec with a V1 depthwise-separable block)', () => {
    const v2 = specFor('efficientnetv2_s', { family: 'keras' });
    const mixed: EfficientNetSpec = { ...v2, stages: v2.stages.map((st, i) => (i === 1 ? { ...st, block: { ...st.block, type: 'mbconv', expand: 1 } } : st)) };
    expect(() => fromKeras(mixed, new Map())).toThrow(InvalidSpecError);
    expect(() => fromKeras(mixed, new Map())).toThrow(/"ds".*a block Keras' EfficientNetV2 builds \(ir, er, cn\)/);
  });
});

describe('the Keras name table', () => {
  const names = (spec: EfficientNetSpec) => [...kerasLayerTargets(spec).values()].map(([module]) => module);
  it.each(['efficientnet_b0', 'efficientnet_b3', 'efficientnet_b7', 'efficientnetv2_b0', 'efficientnetv2_b3', 'efficientnetv2_s', 'efficientnetv2_m', 'efficientnetv2_l'])(
    '%s: one Keras layer for every module that holds parameters, and no other',
    (variant) => {
      const { spec, graph } = smallModel(variant, 'keras');
      const modules = [...new Set(graph.parameters.map((p) => p.name.slice(0, p.name.lastIndexOf('.'))))].sort();
      expect(names(spec).sort()).toEqual(modules);
      expect(new Set(names(spec)).size).toBe(names(spec).length);
      expect(kerasGeneration(spec)).toBe(variant.startsWith('efficientnetv2') ? 'v2' : 'v1');
    },
  );
  it('names V2 parts as Keras does: dwconv2, and a fused conv by what it does in the block', () => {
    const t = kerasLayerTargets(specFor('efficientnetv2_s', { family: 'keras' }));
    expect(t.get('block1a_project_conv')).toEqual(['blocks.0.0.conv', 'conv']); // cn: the only (3x3) conv
    expect(t.get('block1b_project_bn')).toEqual(['blocks.0.1.bn1', 'bn']);
    expect(t.get('block2a_expand_conv')).toEqual(['blocks.1.0.conv_exp', 'conv']); // er: the 3x3 expansion
    expect(t.get('block2a_project_conv')).toEqual(['blocks.1.0.conv_pwl', 'conv']);
    expect(t.get('block4a_dwconv2')).toEqual(['blocks.3.0.conv_dw', 'depthwise']);
    expect(t.get('block6o_se_reduce')).toEqual(['blocks.5.14.se.conv_reduce', 'conv']);
    expect(t.has('block4a_dwconv')).toBe(false);
    expect(kerasLayerTargets(specFor('efficientnet_b0', { family: 'keras' })).get('block2a_dwconv')).toEqual(['blocks.1.0.conv_dw', 'depthwise']);
  });
});

describe('Keras EfficientNetV2 files', () => {
  const v2 = smallModel('efficientnetv2_b0', 'keras');
  const v2Weights = testWeights(v2.graph, 11);
  let v2Want: Float32Array;
  beforeAll(async () => {
    const runner = await new OnnxBackend().load(v2.graph, v2Weights, { threads: 1 });
    v2Want = (await runner.run(x)).logits!.data as Float32Array;
    await runner.dispose();
    await writeKerasH5(join(dir, 'v2b0_weights.h5'), kerasV2Layers(v2.spec, v2Weights, { normalization: true }), { fullModel: false });
    await writeKerasH5(join(dir, 'v2b0_model.h5'), kerasV2Layers(v2.spec, v2Weights, { normalization: true }), { fullModel: true });
  });

  it('maps every tensor of a Keras EfficientNetV2-B0 file exactly once to the canonical names and layouts', async () => {
    for (const file of ['v2b0_weights.h5', 'v2b0_model.h5']) {
      const raw = await readKerasH5(join(dir, file));
      const { tensors, notes } = fromKeras(v2.spec, raw);
      const params = v2.graph.parameters.map((p) => p.name).sort();
      expect([...tensors.keys()].sort()).toEqual(params);
      // Exactly once: every Keras tensor but the Normalization's three became one canonical tensor (none collided).
      expect(raw.size - 3).toBe(params.length);
      for (const p of v2.graph.parameters) {
        const got = tensors.get(p.name)!;
        const t = v2Weights.get(p.name)!;
        expect(got.shape, p.name).toEqual(p.shape);
        expect(Buffer.compare(Buffer.from((got.data as Float32Array).buffer, got.data.byteOffset, got.data.byteLength), Buffer.from((t.data as Float32Array).buffer, t.data.byteOffset, t.data.byteLength)), p.name).toBe(0);
      }
      expect(notes).toEqual([expect.stringMatching(/^dropped Keras input-preprocessing layer "normalization" \(mean \[3\]/)]);
    }
  });

  it('the converted V2 model loads as a registry entry (TF SAME padding, BN eps 1e-3) and equals a direct load', async () => {
    const m = await loadKerasFile('v2b0_model.h5', 'efficientnetv2_b0');
    expect(m.spec).toMatchObject({ padding: 'same', bnEps: 1e-3 });
    const got = (await m.run(x)).data as Float32Array;
    await m.dispose();
    expect(Array.from(got)).toEqual(Array.from(v2Want));
  });

  it('an S/M/L file has no Normalization layer (only a weightless Rescaling): nothing to drop, nothing noted', async () => {
    const layers = kerasV2Layers(v2.spec, v2Weights, { normalization: false });
    const file = join(dir, 'v2b0_rescaling_only.h5');
    await writeKerasH5(file, layers, { fullModel: false });
    const { tensors, notes } = fromKeras(v2.spec, await readKerasH5(file));
    expect(tensors.size).toBe(v2.graph.parameters.length);
    expect(notes).toEqual([]);
  });
});

afterAll(removeTempDirs);
