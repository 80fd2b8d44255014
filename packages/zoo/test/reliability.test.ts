/**
 * The zoo's cases from the reliability report (issue 18), each a test that failed before its fix: a pinned size is
 * enforced while streaming, a stalled server is reported as a timeout, a failed pull leaves no empty directory,
 * verify reports an unreadable meta.json, the bearer token never travels over plain http, the checksum message does
 * not advise dropping the sha256, and a registry of 150k entries loads.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChecksumError, DownloadError, pull, Registry, verifyCache } from '../src/index.js';
import { blob, cleanEnv, removeTempDirs, sendBody, sha256, tempDir, TestServer } from './helpers.js';

const FILE = blob(200_000, 5);
const server = new TestServer();
let base = '';
let sentBeyond = 0;
const fast = { retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 } };

beforeAll(async () => {
  base = await server.start();
  server
    .route('/plain/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n))
    // A server that sends far more than the entry pins, without announcing a length.
    .route('/endless/model.safetensors', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 7);
      const step = () => {
        if (res.destroyed || sent > 50_000_000) return void res.end();
        res.write(chunk);
        sent += chunk.length;
        sentBeyond = sent;
        setTimeout(step, 1);
      };
      step();
    })
    // Sends headers and a first chunk, then nothing.
    .route('/stall/model.safetensors', (_req, res) => {
      res.writeHead(200, { 'content-length': String(FILE.length) });
      res.write(FILE.subarray(0, 1000));
    })
    .route('/other/model.safetensors', (req, res, n) => sendBody(req, res, blob(200_000, 6), n));
});
afterAll(async () => {
  await server.stop();
  removeTempDirs();
});

function registryWith(entries: object[]): string {
  const file = join(tempDir(), 'registry.json');
  writeFileSync(file, JSON.stringify({ entries }));
  return file;
}
const entry = (name: string, path: string, extra: object = {}) => ({ name, arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: `${base}${path}`, sha256: sha256(FILE), ...extra });

describe('pull, on hostile servers', () => {
  it('stops a transfer as soon as it passes the pinned size, keeping nothing', async () => {
    const cacheDir = tempDir();
    const registry = registryWith([entry('r.endless', '/endless/model.safetensors', { size: FILE.length })]);
    await expect(pull('r.endless', { registry, cacheDir, env: cleanEnv(), ...fast })).rejects.toThrow(/more than the 200000 bytes the entry pins/);
    // The server was cut off long before it had sent its 50 MB.
    expect(sentBeyond).toBeLessThan(20_000_000);
    expect(existsSync(join(cacheDir, 'models', 'r.endless'))).toBe(false);
  });

  it('reports a stalled server as a timeout, with the idle timeout it waited and how to change it', async () => {
    const cacheDir = tempDir();
    const registry = registryWith([entry('r.stall', '/stall/model.safetensors')]);
    const err = await pull('r.stall', { registry, cacheDir, env: cleanEnv(), idleTimeoutMs: 300, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/timed out: the server sent nothing for 0\.3 s .*--idle-timeout/);
  });

  it('leaves no empty models/<name>/ behind when a pull fails', async () => {
    const cacheDir = tempDir();
    const registry = registryWith([entry('r.missing', '/nothing-here/model.safetensors')]);
    await expect(pull('r.missing', { registry, cacheDir, env: cleanEnv(), ...fast })).rejects.toThrow(DownloadError);
    expect(existsSync(join(cacheDir, 'models', 'r.missing'))).toBe(false);
  });

  it('a checksum mismatch does not advise removing the sha256', async () => {
    const cacheDir = tempDir();
    const registry = registryWith([entry('r.other', '/other/model.safetensors')]);
    const err = await pull('r.other', { registry, cacheDir, env: cleanEnv(), ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect(err.message).not.toMatch(/remove it/);
    expect(err.message).toMatch(/put the new sha256 in the registry entry/);
  });

  it('sends HF_TOKEN to the Hugging Face host over https only, never over plain http', async () => {
    const cacheDir = tempDir();
    // HF_ENDPOINT points the Hugging Face host at our plain-http server.
    const registry = registryWith([{ ...entry('r.hf', '/plain/model.safetensors'), url: 'https://huggingface.co/plain/model.safetensors' }]);
    const before = server.hits.length;
    await pull('r.hf', { registry, cacheDir, env: cleanEnv({ HF_ENDPOINT: base, HF_TOKEN: 'secret-token' }), ...fast });
    const hits = server.hits.slice(before);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.auth === undefined)).toBe(true);
  });
});

describe('the cache and the registry', () => {
  it('zoo verify reports an entry whose meta.json is corrupt instead of skipping it', async () => {
    const cacheDir = tempDir();
    const registry = registryWith([entry('r.plain', '/plain/model.safetensors')]);
    await pull('r.plain', { registry, cacheDir, env: cleanEnv() });
    writeFileSync(join(cacheDir, 'models', 'r.plain', 'meta.json'), '{ not json');
    const reports = await verifyCache({ cacheDir, env: cleanEnv() });
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ name: 'r.plain', ok: false });
    expect(reports[0]!.problem).toMatch(/meta\.json is missing or unreadable, so model\.safetensors cannot be verified/);
    // A directory holding only an unfinished download says how to resume it.
    mkdirSync(join(cacheDir, 'models', 'r.half'));
    writeFileSync(join(cacheDir, 'models', 'r.half', 'model.safetensors.partial'), 'x');
    const again = await verifyCache({ cacheDir, env: cleanEnv() });
    expect(again.find((r) => r.name === 'r.half')!.problem).toMatch(/unfinished download; "effnet pull r.half" resumes it/);
    expect(readdirSync(join(cacheDir, 'models')).sort()).toEqual(['r.half', 'r.plain']);
  });

  it('loads a registry of 150,000 entries (no spread of every entry onto the call stack)', async () => {
    const entries = Array.from({ length: 150_000 }, (_, i) => ({ name: `m${i}.t`, arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: `https://example.com/${i}.safetensors`, sha256: sha256(FILE) }));
    const registry = await Registry.load({ registry: registryWith(entries), env: cleanEnv() });
    expect(registry.get('m149999.t').url).toBe('https://example.com/149999.safetensors');
  });
});
