import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectorConfig, resolveVariant } from '@effnet/core';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_ENTRIES, Registry, RegistryError, specForEntry, UnknownModelError, validateEntry, WEIGHT_FORMATS } from '../src/index.js';
import { cleanEnv, removeTempDirs, tempDir } from './helpers.js';

const SHA = 'a'.repeat(64);

function writeRegistry(doc: unknown): string {
  const file = join(tempDir(), 'registry.json');
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
}

describe('the built-in registry', () => {
  const names = BUILTIN_ENTRIES.map((e) => e.name);

  it('is valid data: every entry passes the schema unchanged, names are unique, every arch is a variant', () => {
    expect(new Set(names).size).toBe(names.length);
    for (const e of BUILTIN_ENTRIES) {
      const { origin: _o, ...raw } = e;
      const r = validateEntry(raw, e.name, { requireSha256: false, formats: WEIGHT_FORMATS, origin: 'builtin' });
      expect(r.problems).toEqual([]);
      expect(r.entry).toEqual(e);
      expect(() => (e.task === 'detection' ? detectorConfig(e.arch) : resolveVariant(e.arch))).not.toThrow();
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
    ];
    for (const m of must) expect(names.some((n) => (m.endsWith('.') ? n.startsWith(m) : n === m)), m).toBe(true);
    expect(BUILTIN_ENTRIES.length).toBeGreaterThanOrEqual(75);
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
      if (e.family === 'keras') expect(e).toMatchObject({ format: 'h5', naming: 'keras', md5: expect.stringMatching(/^[0-9a-f]{32}$/) });
    }
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
    await expect(Registry.load({ registry: '/nonexistent/registry.json', env: cleanEnv() })).rejects.toThrow(/registry \/nonexistent\/registry.json is invalid .*\n.*cannot be read/);
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
