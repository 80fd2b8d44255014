import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEfficientNet, countParameters, detectorConfig, resolveVariant, segmenterConfig } from '@effnet/core';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_ENTRIES, type RegistryEntry, Registry, RegistryError, specForEntry, UnknownModelError, validateEntry, WEIGHT_FORMATS } from '../src/index.js';
import { TIMM_CFG_COMMIT, TIMM_RESULTS_COMMIT } from '../src/registry/builtin.js';
import { cleanEnv, removeTempDirs, tempDir } from './helpers.js';

const SHA = 'a'.repeat(64);

function writeRegistry(doc: unknown): string {
  const file = join(tempDir(), 'registry.json');
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

describe('the built-in registry', () => {
  const names = BUILTIN_ENTRIES.map((e) => e.name);

  it('is valid data: every entry passes the schema unchanged, names are unique, every arch is a variant (detector, segmenter)', () => {
    expect(new Set(names).size).toBe(names.length);
    for (const e of BUILTIN_ENTRIES) {
      const { origin: _o, ...raw } = e;
      const r = validateEntry(raw, e.name, { requireSha256: false, formats: WEIGHT_FORMATS, origin: 'builtin' });
      expect(r.problems).toEqual([]);
      expect(r.entry).toEqual(e);
      expect(() => (e.task === 'detection' ? detectorConfig(e.arch) : e.task === 'segmentation' ? segmenterConfig(e.arch) : resolveVariant(e.arch))).not.toThrow();
      expect(e.reference).toBeTruthy();
      if (e.top1 !== undefined) expect(e.top1Resolution).toBeGreaterThan(0);
    }
  });

  it('covers the variants the issue names', () => {
    const must = [
      ...[0, 1, 2, 3, 4, 5].map((b) => `efficientnet_b${b}.`),
      ...[0, 1, 2, 3, 4, 5].map((b) => `tf_efficientnet_b${b}.in1k`),
      ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((b) => [`tf_efficientnet_b${b}.ap_in1k`, `tf_efficientnet_b${b}.ns_jft_in1k`, `tf_efficientnet_b${b}.aa_in1k`]),
      ...[0, 1, 2, 3, 4].map((l) => `tf_efficientnet_lite${l}.in1k`),
      ...['s', 'm', 'l'].flatMap((s) => [`tf_efficientnetv2_${s}.in1k`, `tf_efficientnetv2_${s}.in21k_ft_in1k`]),
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((b) => `efficientnet_b${b}.tv_in1k`),
      ...['s', 'm', 'l'].map((s) => `efficientnet_v2_${s}.tv_in1k`),
      ...[5, 7, 8].map((b) => `tf_efficientnet_b${b}.ra_in1k`),
      'tf_efficientnet_b8.ap_in1k',
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((b) => `efficientnet_b${b}.keras_in1k`),
      ...['b0', 'b1', 'b2', 'b3', 's', 'm', 'l'].map((v) => `efficientnetv2_${v}.keras_in1k`),
    ];
    for (const m of must) expect(names.some((n) => (m.endsWith('.') ? n.startsWith(m) : n === m)), m).toBe(true);
    // tf_efficientnet_b6/b7 and tf_efficientnetv2_xl have no .in1k weights in timm.
    for (const absent of ['tf_efficientnet_b6.in1k', 'tf_efficientnet_b7.in1k', 'tf_efficientnetv2_xl.in1k']) expect(names).not.toContain(absent);
    expect(BUILTIN_ENTRIES.length).toBeGreaterThanOrEqual(86);
  });

  it('timm entries point at the Hub, torchvision entries carry the sha256 prefix of their file name', () => {
    for (const e of BUILTIN_ENTRIES) {
      if (e.family === 'timm' || e.family === 'tf') {
        expect(e.url).toBe(`https://huggingface.co/timm/${e.name}/resolve/main/model.safetensors`);
        expect(e).toMatchObject({ format: 'safetensors', naming: 'timm', license: 'apache-2.0' });
      }
      if (e.family === 'torchvision') {
        expect(e.url).toMatch(/^https:\/\/download\.pytorch\.org\/models\/efficientnet_[a-z0-9_]+-[0-9a-f]{8}\.pth$/);
        expect(e.url).toContain(`-${e.sha256Prefix}.pth`);
        expect(e.format).toBe('pth');
      }
      if (e.family === 'keras') {
        expect(e).toMatchObject({ format: 'h5', naming: 'keras', md5: expect.stringMatching(/^[0-9a-f]{32}$/) });
        const v2 = /^efficientnetv2_(b[0-3]|[sml])$/.exec(e.arch)?.[1];
        expect(e.url).toBe(v2 ? `https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/efficientnetv2-${v2}.h5` : `https://storage.googleapis.com/keras-applications/${e.arch.replace('_', '')}.h5`);
      }
    }
  });

  it('feeds each Keras V2 application the scaling it builds in: ImageNet mean/std for B0-B3, (p - 128) / 128 for S/M/L', () => {
    const reg = new Registry(BUILTIN_ENTRIES);
    expect(reg.get('efficientnetv2_b2.keras_in1k').preprocessing).toEqual({ inputSize: 260, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    const s = reg.get('efficientnetv2_s.keras_in1k').preprocessing;
    expect(s.inputSize).toBe(384);
    // On [0, 255] pixels p: (p / 255 - mean) / std must equal p / 128 - 1.
    for (const p of [0, 1, 127.5, 128, 200, 255]) expect((p / 255 - s.mean[0]) / s.std[0]).toBeCloseTo(p / 128 - 1, 12);
    expect(specForEntry(reg.get('efficientnetv2_m.keras_in1k'))).toMatchObject({ padding: 'same', bnEps: 1e-3 });
  });

  it('gives each entry the conventions of its family', () => {
    const reg = new Registry(BUILTIN_ENTRIES);
    expect(specForEntry(reg.get('tf_efficientnet_b3.ns_jft_in1k'))).toMatchObject({ padding: 'same', bnEps: 1e-3 });
    expect(specForEntry(reg.get('efficientnet_b3.ra2_in1k'))).toMatchObject({ padding: 'symmetric', bnEps: 1e-5 });
    expect(specForEntry(reg.get('efficientnet_b5.tv_in1k'))).toMatchObject({ padding: 'symmetric', bnEps: 1e-3 });
    expect(specForEntry(reg.get('efficientnet_b4.tv_in1k'))).toMatchObject({ padding: 'symmetric', bnEps: 1e-5 });
    expect(specForEntry(reg.get('efficientnet_v2_s.tv_in1k'))).toMatchObject({ padding: 'symmetric', bnEps: 1e-3 });
    expect(specForEntry(reg.get('efficientnet_b0.keras_in1k'))).toMatchObject({ padding: 'same', bnEps: 1e-3 });
  });

  it('resolves a bare architecture to its first tag and suggests names for typos', () => {
    const reg = new Registry(BUILTIN_ENTRIES);
    expect(reg.get('efficientnet_b0').name).toBe('efficientnet_b0.ra_in1k');
    expect(reg.get('tf_efficientnetv2_s').name).toBe('tf_efficientnetv2_s.in1k');
    const err = (() => {
      try {
        reg.get('efficientnet_b0.ra_in1');
      } catch (e) {
        return e as UnknownModelError;
      }
    })();
    expect(err).toBeInstanceOf(UnknownModelError);
    expect(err!.message).toMatch(/^"efficientnet_b0.ra_in1" is not in the model registry \(did you mean "efficientnet_b0.ra_in1k"/);
    expect(err!.message).toMatch(/run "effnet zoo list" for every name, or add your own entry with --registry <file> or EFFNET_REGISTRY/);
  });
});

describe("Keras' figures", () => {
  // keras.io's "Parameters" column (keras-io templates/api/applications/index.md @ e7be306b), in millions.
  const KERAS_IO_PARAMS: Record<string, number> = {
    efficientnet_b0: 5.3, efficientnet_b1: 7.9, efficientnet_b2: 9.2, efficientnet_b3: 12.3, efficientnet_b4: 19.5, efficientnet_b5: 30.6, efficientnet_b6: 43.3, efficientnet_b7: 66.7,
    efficientnetv2_b0: 7.2, efficientnetv2_b1: 8.2, efficientnetv2_b2: 10.2, efficientnetv2_b3: 14.5, efficientnetv2_s: 21.6, efficientnetv2_m: 54.4, efficientnetv2_l: 119.0,
  };

  it("each Keras entry's architecture has keras.io's parameter count (Keras also counts BatchNorm's moving mean and variance)", () => {
    const keras = BUILTIN_ENTRIES.filter((e) => e.family === 'keras');
    expect(keras.map((e) => e.arch).sort()).toEqual(Object.keys(KERAS_IO_PARAMS).sort());
    for (const e of keras) {
      const graph = buildEfficientNet(specForEntry(e), { numClasses: e.numClasses });
      const movingStats = 2 * graph.parameters.filter((p) => p.name.endsWith('.running_mean')).reduce((n, p) => n + p.shape[0]!, 0);
      expect(Math.round((countParameters(graph) + movingStats) / 1e5) / 10, e.name).toBe(KERAS_IO_PARAMS[e.arch]);
    }
  });
});

/** The committed extract of timm's results table (see test/fixtures/README.md). */
const RESULTS_FILE = fileURLToPath(new URL(`fixtures/timm-results-imagenet-${TIMM_RESULTS_COMMIT.slice(0, 8)}.csv`, import.meta.url));
const RESULTS_HEADER = 'model,img_size,top1,top1_err,top5,top5_err,param_count,crop_pct,interpolation';
interface ResultRow {
  model: string;
  imgSize: number;
  top1: number;
  top1Err: number;
  top5: number;
  top5Err: number;
  /** Millions, as printed (two decimals). */
  paramCount: number;
  cropPct: number;
  interpolation: string;
}
function readResults(): ResultRow[] {
  const [header, ...lines] = readFileSync(RESULTS_FILE, 'utf8').trimEnd().split('\n');
  expect(header).toBe(RESULTS_HEADER);
  return lines.map((l) => {
    const f = l.split(',');
    expect(f, l).toHaveLength(9);
    return { model: f[0]!, imgSize: +f[1]!, top1: +f[2]!, top1Err: +f[3]!, top5: +f[4]!, top5Err: +f[5]!, paramCount: +f[6]!, cropPct: +f[7]!, interpolation: f[8]! };
  });
}
const timmEntries = (): RegistryEntry[] => BUILTIN_ENTRIES.filter((e) => e.family === 'timm' || e.family === 'tf');
/** The size a timm tag is evaluated (and ranked) at: test_input_size, else input_size. */
const evalSize = (e: RegistryEntry) => e.preprocessing.testInputSize ?? e.preprocessing.inputSize;

describe("timm's figures, pinned to the revision they come from", () => {
  const rows = readResults();

  it('the extract is rows of the table as published: consistent, in its order, EfficientNet variants only, one row per tag and size', () => {
    expect(rows.length).toBeGreaterThan(0);
    rows.forEach((r, i) => {
      // A digit copied wrong shows here: timm prints the error as 100 - accuracy.
      expect(r.top1 + r.top1Err, r.model).toBeCloseTo(100, 9);
      expect(r.top5 + r.top5Err, r.model).toBeCloseTo(100, 9);
      if (i > 0) expect(r.top1, r.model).toBeLessThanOrEqual(rows[i - 1]!.top1);
      expect(() => resolveVariant(r.model.slice(0, r.model.indexOf('.'))), r.model).not.toThrow();
    });
    expect(new Set(rows.map((r) => `${r.model}@${r.imgSize}`)).size).toBe(rows.length);
  });

  it("every timm top-1 is timm's results table at the entry's evaluation size, and every tag the table ranks has one", () => {
    const ranked = new Set(rows.map((r) => r.model));
    for (const e of timmEntries()) {
      expect(e.reference, e.name).toContain(`results/results-imagenet.csv @ ${TIMM_RESULTS_COMMIT}`);
      expect(e.reference, e.name).toContain(`timm/models/efficientnet.py @ ${TIMM_CFG_COMMIT}`);
      if (!ranked.has(e.name)) {
        expect(e.top1, `${e.name} is not in timm's table`).toBeUndefined();
        continue;
      }
      const row = rows.find((r) => r.model === e.name && r.imgSize === evalSize(e));
      expect(row, `${e.name} at ${evalSize(e)} px`).toBeDefined();
      expect({ top1: e.top1, at: e.top1Resolution }, e.name).toEqual({ top1: row!.top1, at: row!.imgSize });
      // The row was measured with the entry's own preprocessing at that size.
      const crop = e.preprocessing.testInputSize ? e.preprocessing.testCropPct ?? e.preprocessing.cropPct : e.preprocessing.cropPct;
      expect({ crop, interpolation: e.preprocessing.interpolation }, e.name).toEqual({ crop: row!.cropPct, interpolation: row!.interpolation });
    }
    // And no EfficientNet tag timm ranks is missing from the registry.
    const names = new Set(BUILTIN_ENTRIES.map((e) => e.name));
    expect([...ranked].filter((m) => !names.has(m))).toEqual([]);
  });

  it("each ranked architecture has timm's parameter count (millions, two decimals), B8 and L2 included", () => {
    const byArch = new Map<string, ResultRow>();
    for (const r of rows) byArch.set(r.model.slice(0, r.model.indexOf('.')), r);
    expect([...byArch.keys()]).toEqual(expect.arrayContaining(['tf_efficientnet_b8', 'tf_efficientnet_l2', 'efficientnet_b5', 'tf_efficientnetv2_xl']));
    for (const [arch, r] of byArch) {
      const e = BUILTIN_ENTRIES.find((x) => x.name === r.model)!;
      const params = countParameters(buildEfficientNet(specForEntry(e), { numClasses: e.numClasses }));
      expect(Math.round(params / 1e4) / 100, arch).toBe(r.paramCount);
    }
  });
});

describe('user registries', () => {
  it('accept the smallest entry and fill the rest from the arch and family', async () => {
    const file = writeRegistry({ entries: [{ name: 'mine.v1', arch: 'tf_efficientnet_b2', family: 'tf', format: 'safetensors', url: 'weights/b2.safetensors', sha256: SHA.toUpperCase() }] });
    const reg = await Registry.load({ registry: file, env: cleanEnv() });
    const e = reg.get('mine.v1');
    expect(e).toMatchObject({
      naming: 'timm',
      labels: 'imagenet-1k',
      sha256: SHA,
      url: join(file, '..', 'weights', 'b2.safetensors'),
      origin: file,
      preprocessing: { inputSize: 260, cropPct: 0.875, interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    });
    expect(reg.sources).toEqual(['builtin', file]);
    expect(reg.get('efficientnet_b0.ra_in1k').origin).toBe('builtin');
  });

  it('come from EFFNET_REGISTRY too, and replace a built-in entry of the same name', async () => {
    const file = writeRegistry({
      entries: [{ name: 'efficientnet_b0.ra_in1k', arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: 'https://mirror.example/b0.safetensors', sha256: SHA }],
    });
    const reg = await Registry.load({ env: cleanEnv({ EFFNET_REGISTRY: file }) });
    expect(reg.get('efficientnet_b0.ra_in1k')).toMatchObject({ url: 'https://mirror.example/b0.safetensors', origin: file });
  });

  it('a registry with bad entries is one error that lists every problem by entry and field', async () => {
    const file = writeRegistry({
      entries: [
        { name: 'ok.one', arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: 'a.safetensors', sha256: SHA },
        { name: 'bad.two', arch: 'efficientnet_b9', family: 'pytorch', format: 'pickle', url: 'ftp://x/y', sha256: 'abc', sha265: SHA },
        { name: 'bad three', arch: 'efficientnet_b0', family: 'keras', format: 'h5', url: 'k.h5', preprocessing: { mean: [1, 2], inputSize: -1 } },
        'not an object',
        { name: 'ok.one', arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: 'b.safetensors', sha256: SHA },
      ],
    });
    const err = await Registry.load({ registry: file, env: cleanEnv() }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryError);
    const where = (err as RegistryError).problems.map((p) => p.where);
    expect(where).toEqual([
      'entries[1] ("bad.two").sha265',
      'entries[1] ("bad.two").arch',
      'entries[1] ("bad.two").family',
      'entries[1] ("bad.two").format',
      'entries[1] ("bad.two").url',
      'entries[1] ("bad.two").sha256',
      'entries[2] ("bad three").sha256',
      'entries[2] ("bad three").name',
      'entries[2] ("bad three").preprocessing.inputSize',
      'entries[2] ("bad three").preprocessing.mean',
      'entries[3]',
      'entries[4].name',
    ]);
    const msg = (err as Error).message;
    expect(msg).toContain(`registry ${file} is invalid (12 problems)`);
    expect(msg).toContain('entries[1] ("bad.two").arch: "efficientnet_b9" is not a known variant');
    expect(msg).toContain('entries[1] ("bad.two").family: "pytorch" is not one of timm, tf, torchvision, keras, effnet');
    expect(msg).toContain('entries[1] ("bad.two").format: "pickle" is not one of safetensors, h5, pth');
    expect(msg).toContain('entries[1] ("bad.two").sha265: unknown field');
    expect(msg).toContain('entries[1] ("bad.two").sha256: "abc" is not 64 hex digits');
    expect(msg).toContain('entries[2] ("bad three").sha256: is required');
    expect(msg).toContain('entries[4].name: "ok.one" is already used by entries[0]');
    expect(msg).toContain('the smallest entry is {"name", "arch", "family", "format", "url", "sha256"}');
  });

  it('a file that is not JSON, or not {"entries": [...]}, says so', async () => {
    await expect(Registry.load({ registry: writeRegistry('{ nope'), env: cleanEnv() })).rejects.toThrow(/is not valid JSON/);
    await expect(Registry.load({ registry: writeRegistry([]), env: cleanEnv() })).rejects.toThrow(/must be an object \{"entries": \[ \.\.\. \]\}/);
    await expect(Registry.load({ registry: '/nonexistent/registry.json', env: cleanEnv() })).rejects.toThrow(/registry \/nonexistent\/registry.json is invalid: \(file\): cannot be read: ENOENT/);
  });

  it('rejects an h5 file that is not Keras-named and Keras names outside h5', async () => {
    const file = writeRegistry({
      entries: [
        { name: 'x.h5', arch: 'efficientnet_b0', family: 'timm', format: 'h5', url: 'a.h5', sha256: SHA },
        { name: 'x.st', arch: 'efficientnet_b0', family: 'keras', format: 'safetensors', url: 'a.safetensors', sha256: SHA },
      ],
    });
    await expect(Registry.load({ registry: file, env: cleanEnv() })).rejects.toThrow(/x\.h5"\)\.naming: \.h5 files are read as Keras weights[\s\S]*x\.st"\)\.format: Keras names come in \.h5 files/);
  });

  it('accepts .pth checkpoints with a weightsKey, and a weightsKey only for them', async () => {
    const ok = writeRegistry({ entries: [{ name: 'mine.ckpt', arch: 'efficientnet_b0', family: 'timm', format: 'pth', url: 'train/last.pth', sha256: SHA, weightsKey: 'state_dict' }] });
    expect((await Registry.load({ registry: ok, env: cleanEnv() })).get('mine.ckpt')).toMatchObject({ format: 'pth', naming: 'timm', weightsKey: 'state_dict' });
    const bad = writeRegistry({ entries: [{ name: 'mine.st', arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: 'a.safetensors', sha256: SHA, weightsKey: 'model' }] });
    await expect(Registry.load({ registry: bad, env: cleanEnv() })).rejects.toThrow(/mine\.st"\)\.weightsKey: only \.pth checkpoints have entries to choose from/);
  });
});

afterAll(removeTempDirs);
