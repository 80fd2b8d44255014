import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, randomWeights, readNpy, serializeSafetensors, specFor, writeNpy } from '@effnet/core';
import { BUILTIN_ENTRIES } from '@effnet/zoo';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli.js';
import { progressReporter } from './zoo.js';

const spec = specFor('efficientnet_b0', { resolution: 32 });
const graph = buildEfficientNet(spec, { numClasses: 10, inputResolution: 32 });
const FILE = serializeSafetensors(randomWeights(graph, 2));
const SHA = createHash('sha256').update(FILE).digest('hex');
let server: http.Server;
let registry = '';
const dir = mkdtempSync(join(tmpdir(), 'effnet-cli-zoo-'));
const cacheDir = join(dir, 'cache');
let gets = 0;

beforeAll(async () => {
  // A loopback server with one weight file (no Range support needed here).
  server = http.createServer((req, res) => {
    if (req.url !== '/b0/model.safetensors') return void res.writeHead(404).end();
    gets++;
    res.writeHead(200, { 'content-length': FILE.length }).end(Buffer.from(FILE));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  registry = join(dir, 'registry.json');
  writeFileSync(
    registry,
    JSON.stringify({
      entries: [
        { name: 'tiny_b0.test', arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: `${base}/b0/model.safetensors`, sha256: SHA, top1: 12.5, numClasses: 10, preprocessing: { inputSize: 32 } },
      ],
    }),
  );
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s));
  return lines.join('\n');
}

describe('effnet zoo / pull', () => {
  it('zoo list shows the built-in registry and yours, with top-1, size and cached', async () => {
    const rows = JSON.parse(await run(['zoo', 'list', '--json', '--registry', registry, '--cache-dir', cacheDir]));
    const top1 = (name: string) => BUILTIN_ENTRIES.find((e) => e.name === name)!.top1!;
    expect(rows.length).toBe(BUILTIN_ENTRIES.length + 1);
    expect(rows.find((r: { name: string }) => r.name === 'efficientnet_b0.ra_in1k')).toMatchObject({ arch: 'efficientnet_b0', top1: top1('efficientnet_b0.ra_in1k'), cached: false, format: 'safetensors' });
    expect(rows.find((r: { name: string }) => r.name === 'efficientnet_b0.tv_in1k')).toMatchObject({ format: 'pth', approxSizeMB: 20.450974 });
    expect(rows.at(-1)).toMatchObject({ name: 'tiny_b0.test', top1: 12.5, cached: false, origin: registry });
    const table = await run(['zoo', 'list', '--registry', registry, '--cache-dir', cacheDir]);
    expect(table).toMatch(/^name +arch +family +top-1 +size +cached/);
    const b7 = String(top1('tf_efficientnet_b7.ns_jft_in1k')).replace('.', '\\.');
    expect(table).toMatch(new RegExp(`tf_efficientnet_b7\\.ns_jft_in1k +tf_efficientnet_b7 +tf +${b7} @600`));
    expect(table).toMatch(/efficientnet_b0\.tv_in1k +efficientnet_b0 +torchvision +77\.692 @224 +~20\.5 MB/);
  });

  it('pull prints plain progress lines when not on a terminal, then the verified path; list shows it cached', async () => {
    const progress: string[] = [];
    const lines: string[] = [];
    await main(['pull', 'tiny_b0.test', '--registry', registry, '--cache-dir', cacheDir], (s) => lines.push(s), { write: (s: string) => progress.push(s), isTTY: false });
    expect(progress.join('')).toMatch(/^tiny_b0\.test: 0% 0\.00 MB \/ \d+\.\d+ MB/m);
    expect(progress.join('')).toMatch(/^tiny_b0\.test: 100% /m);
    expect(progress.join('')).toMatch(/^tiny_b0\.test: verifying sha256$/m);
    expect(progress.every((p) => !p.includes('\r'))).toBe(true);
    expect(lines[0]).toMatch(/^tiny_b0\.test: downloaded \d+\.\d MB, verified against the sha256 its publisher pins$/);
    expect(lines[1]).toBe(join(cacheDir, 'models', 'tiny_b0.test', 'model.safetensors'));
    expect(lines[2]).toBe(`sha256 ${SHA}`);
    const again = await run(['pull', 'tiny_b0.test', '--registry', registry, '--cache-dir', cacheDir]);
    expect(again).toMatch(/^tiny_b0\.test: already in the cache/);
    expect(gets).toBe(1);
    const rows = JSON.parse(await run(['zoo', 'list', '--json', '--registry', registry, '--cache-dir', cacheDir]));
    expect(rows.find((r: { name: string }) => r.name === 'tiny_b0.test')).toMatchObject({ cached: true, size: FILE.length });
  });

  it('draws one bar in place on a terminal', () => {
    const out: string[] = [];
    const r = progressReporter({ write: (s: string) => out.push(s), isTTY: true, columns: 100 });
    r.onProgress({ name: 'm', phase: 'download', bytes: 5e6, total: 2e7, rate: 2.5e6, eta: 6 });
    r.onProgress({ name: 'm', phase: 'download', bytes: 2e7, total: 2e7, rate: 2.5e6, eta: 0 });
    r.finish();
    expect(out[0]).toBe('\r\x1b[2Km [##########..............................]  25%  5.00 MB / 20.0 MB  2.50 MB/s  ETA 6s');
    expect(out[1]).toMatch(/^\r\x1b\[2Km \[#{40}\] 100% {2}20\.0 MB \/ 20\.0 MB/);
    expect(out.at(-1)).toBe('\n');
  });

  it('run takes a pretrained name in place of a variant', async () => {
    const x = join(dir, 'x.npy');
    const y = join(dir, 'y.npy');
    await writeNpy(x, { dtype: 'float32', shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.5) });
    const saved = { reg: process.env.EFFNET_REGISTRY, cache: process.env.EFFNET_CACHE };
    process.env.EFFNET_REGISTRY = registry;
    process.env.EFFNET_CACHE = cacheDir;
    try {
      const text = await run(['run', '--model', 'tiny_b0.test', '--input', x, '--output', y]);
      expect(text).toMatch(/wrote .*y\.npy: logits \[1, 10\] on onnx/);
      expect((await readNpy(y)).shape).toEqual([1, 10]);
    } finally {
      for (const [k, v] of [['EFFNET_REGISTRY', saved.reg], ['EFFNET_CACHE', saved.cache]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(gets).toBe(1);
  });

  it('zoo verify re-hashes the cache, zoo rm removes an entry, and mistakes are clear errors', async () => {
    expect(await run(['zoo', 'verify', '--registry', registry, '--cache-dir', cacheDir])).toBe(`ok    tiny_b0.test  sha256 ${SHA}\n1 verified`);
    expect(await run(['zoo', 'rm', 'tiny_b0.test', '--cache-dir', cacheDir])).toBe(`removed ${join(cacheDir, 'models', 'tiny_b0.test')}`);
    expect(await run(['zoo', 'verify', '--cache-dir', cacheDir])).toMatch(/is empty/);
    await expect(run(['pull', 'efficientnet_b0.ra_in2k', '--cache-dir', cacheDir])).rejects.toThrow(/did you mean "efficientnet_b0\.ra_in1k"/);
    await expect(run(['pull', 'tiny_b0.test', '--registry', registry, '--cache-dir', cacheDir, '--offline'])).rejects.toThrow(/offline mode forbids downloading/);
    await expect(run(['zoo', 'frobnicate'])).rejects.toThrow(/effnet zoo needs one of: list, rm, verify \(got "frobnicate"\)/);
  });
});
