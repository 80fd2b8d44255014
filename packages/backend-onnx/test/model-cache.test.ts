import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, float32Tensor, type OnnxModelBytes, randomWeights, seededNormal, specFor, type TensorMap } from '@effnet/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileToOnnx, compiledCacheKey, OnnxBackend } from '../src/index.js';

const graph = buildEfficientNet(specFor('efficientnet_phi-4'), { numClasses: 5, inputResolution: 32 });
const weights = randomWeights(graph, 3);
const n = seededNormal(9);
const x = float32Tensor([2, 3, 32, 32], Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => n()));

async function logits(cacheDir: string): Promise<{ data: Float32Array; notes: readonly string[] }> {
  const runner = await new OnnxBackend().load(graph, weights, { device: 'cpu', compiledCache: cacheDir });
  try {
    return { data: (await runner.run(x)).logits!.data as Float32Array, notes: runner.notes };
  } finally {
    await runner.dispose();
  }
}

/** Logits and notes of an ONNX model run as it is (loadOnnx), through the cache under `cacheDir` or with none. */
async function runOnnx(model: OnnxModelBytes, cacheDir: string | false): Promise<{ data: Float32Array; notes: string }> {
  const r = await new OnnxBackend().loadOnnx(model, graph, { device: 'cpu', compiledCache: cacheDir } as never);
  try {
    return { data: (await r.run(x)).logits!.data as Float32Array, notes: r.notes.join('; ') };
  } finally {
    await r.dispose();
  }
}

describe('the compiled-model cache', () => {
  it('a second load opens the cached optimized model and nothing else; corrupt files are detected and rebuilt', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'effnet-compiled-'));
    const first = await logits(cache);
    expect(first.notes.join('; ')).toMatch(/compiled and cached/);
    const [key] = readdirSync(join(cache, 'compiled'));
    const dir = join(cache, 'compiled', key!);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['meta.json', 'model.onnx', expect.stringMatching(/^optimized-cpu-[0-9a-f]{12}\.ort$/)]);
    // With ONNX Runtime's optimized model cached, nothing else is read or compiled.
    const second = await logits(cache);
    expect(second.notes.join('; ')).toMatch(/optimized model from the cache/);
    expect(second.notes.join('; ')).not.toMatch(/compiled/);
    expect(second.data).toEqual(first.data);

    // A flipped byte in the optimized model (which the session would read in place): it is rebuilt from the compiled
    // model, and the answer is unchanged.
    const opt = files[2]!;
    const ortBytes = readFileSync(join(dir, opt));
    ortBytes[ortBytes.length >> 1] = ortBytes[ortBytes.length >> 1]! ^ 0x01;
    writeFileSync(join(dir, opt), ortBytes);
    const third = await logits(cache);
    expect(third.notes.join('; ')).toMatch(/compiled model from the cache/);
    expect(third.notes.join('; ')).not.toMatch(/optimized model from the cache/);
    expect(third.data).toEqual(first.data);
    expect((await logits(cache)).notes.join('; ')).toMatch(/optimized model from the cache/);

    // A flipped byte in the compiled model and a truncated optimized one: the entry is stale, rebuilt, same answer.
    const model = readFileSync(join(dir, 'model.onnx'));
    const mid = model.length >> 1;
    model[mid] = model[mid]! ^ 0xff;
    writeFileSync(join(dir, 'model.onnx'), model);
    writeFileSync(join(dir, opt), readFileSync(join(dir, opt)).subarray(0, 100));
    const fourth = await logits(cache);
    expect(fourth.notes.join('; ')).toMatch(/compiled and cached/);
    expect(fourth.data).toEqual(first.data);
    expect((await logits(cache)).notes.join('; ')).toMatch(/optimized model from the cache/);
    // An optimized model whose hash matches but which ONNX Runtime refuses (as a file from another build of it would
    // be): noted, optimized again, same answer.
    const junk = new TextEncoder().encode('not an ORT model');
    writeFileSync(join(dir, opt), junk);
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { files: Record<string, { sha256: string; bytes: number }> };
    meta.files[opt] = { sha256: createHash('sha256').update(junk).digest('hex'), bytes: junk.length };
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
    const refused = await logits(cache);
    expect(refused.notes.join('; ')).toMatch(/the cached optimized model did not open .*; optimized again/);
    expect(refused.data).toEqual(first.data);
    expect((await logits(cache)).notes.join('; ')).toMatch(/optimized model from the cache/);
    // An unreadable meta.json: the same.
    writeFileSync(join(dir, 'meta.json'), '{ not json');
    expect((await logits(cache)).notes.join('; ')).toMatch(/compiled and cached/);
    // Every write went through a temporary file and a rename: none is left behind.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('an ONNX file run as it is keeps its optimized model too', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'effnet-compiled-'));
    const bytes = compileToOnnx(graph, weights).model;
    const load = () => runOnnx({ bytes }, cache);
    const a = await load();
    expect(a.notes).not.toMatch(/from the cache/);
    const b = await load();
    expect(b.notes).toMatch(/optimized model from the cache/);
    expect(b.data).toEqual(a.data);
  });

  it('an ONNX file given by path is read only when its optimized model is not cached', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'effnet-compiled-'));
    const file = join(cache, 'm.onnx');
    const bytes = compileToOnnx(graph, weights).model;
    writeFileSync(file, bytes);
    const load = () => runOnnx({ path: file }, cache);
    const a = await load();
    expect(a.notes).not.toMatch(/from the cache/);
    expect((await runOnnx({ bytes }, false)).data).toEqual(a.data);
    // The cache keys a file by its length and both ends; with the middle of the file zeroed, a second load still gives
    // the first answer: it came from the cached optimized model, not from reading the file again.
    expect(bytes.length).toBeGreaterThan(4 << 16);
    const damaged = Uint8Array.from(bytes);
    damaged.fill(0, 1 << 16, bytes.length - (1 << 16));
    writeFileSync(file, damaged);
    const b = await load();
    expect(b.notes).toMatch(/optimized model from the cache/);
    expect(b.data).toEqual(a.data);
  });

  it('the key changes with any weight, the graph, the options and the runtime version, and only with them', () => {
    const base = compiledCacheKey(graph, weights, {}, 'ort 1');
    expect(compiledCacheKey(graph, new Map(weights), {}, 'ort 1')).toBe(base);
    expect(compiledCacheKey(graph, weights, { fp16: true }, 'ort 1')).not.toBe(base);
    expect(compiledCacheKey(graph, weights, {}, 'ort 2')).not.toBe(base);
    const other = buildEfficientNet(specFor('efficientnet_phi-4'), { numClasses: 5, inputResolution: 40 });
    expect(compiledCacheKey(other, weights, {}, 'ort 1')).not.toBe(base);
    const names = [...weights.keys()];
    fc.assert(
      fc.property(fc.nat({ max: names.length - 1 }), fc.nat(), fc.double({ min: -1, max: 1, noNaN: true }), (i, j, delta) => {
        const t = weights.get(names[i]!)!;
        const data = Float32Array.from(t.data as Float32Array);
        const k = j % data.length;
        const changed = Math.fround(data[k]! + delta + 0.5);
        fc.pre(changed !== data[k]);
        data[k] = changed;
        const w: TensorMap = new Map(weights);
        w.set(names[i]!, { ...t, data });
        expect(compiledCacheKey(graph, w, {}, 'ort 1')).not.toBe(base);
      }),
      { numRuns: 30 },
    );
  });
});
