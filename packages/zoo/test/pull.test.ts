import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChecksumError,
  cachePaths,
  DownloadError,
  effectiveUrl,
  listCached,
  OfflineError,
  pull,
  type PullProgress,
  Registry,
  type RegistryEntry,
  removeCached,
  resolveCacheDir,
  verifyCache,
  hubAuthHeaders,
} from '../src/index.js';
import { blob, cleanEnv, deferred, removeTempDirs, sendBody, sha256, tempDir, TestServer } from './helpers.js';

const FILE = blob(300_000, 1);
const OTHER = blob(200_000, 2);
const server = new TestServer();
let base = '';
let registryFile = '';
const fast = { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 } };

function entry(name: string, path: string, extra: Record<string, unknown> = {}) {
  return { name, arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: `${base}${path}`, sha256: sha256(FILE), ...extra };
}

beforeAll(async () => {
  base = await server.start();
  server
    .route('/plain/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n))
    .route('/cut/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { cutAt: 120_000 }))
    .route('/norange/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { noRange: true, cutAt: 50_000 }))
    .route('/wrong/model.safetensors', (req, res, n) => sendBody(req, res, OTHER, n))
    .route('/e500/model.safetensors', (_req, res) => res.writeHead(500).end('boom'))
    .route('/flaky/model.safetensors', (req, res, n) => (n <= 2 ? res.writeHead(503, { 'retry-after': '0' }).end() : sendBody(req, res, FILE, n)))
    .route('/gated/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { gate: gate.promise }))
    .route('/held/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { gate: held.promise }))
    .route('/etag/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { etag: sha256(FILE) }))
    .route('/etag-wrong/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { etag: sha256(OTHER) }))
    // Hugging Face style: /<repo>/resolve/main/<file> answers 302 with X-Linked-Etag and X-Linked-Size, then a CDN serves it.
    .route('/timm/hf_b0.test/resolve/main/model.safetensors', (_req, res) =>
      res.writeHead(302, { location: '/cdn/abc', 'x-linked-etag': `"${sha256(FILE)}"`, 'x-linked-size': String(FILE.length) }).end(),
    )
    .route('/cdn/abc', (req, res, n) => sendBody(req, res, FILE, n, { etag: 'not-a-sha' }));
  const dir = tempDir();
  registryFile = join(dir, 'registry.json');
  const entries = [
    entry('t.plain', '/plain/model.safetensors'),
    entry('t.cut', '/cut/model.safetensors'),
    entry('t.norange', '/norange/model.safetensors'),
    entry('t.wrong', '/wrong/model.safetensors'),
    entry('t.e404', '/missing/model.safetensors'),
    entry('t.e500', '/e500/model.safetensors'),
    entry('t.flaky', '/flaky/model.safetensors'),
    entry('t.gated', '/gated/model.safetensors'),
    entry('t.held', '/held/model.safetensors'),
    entry('t.size', '/plain/model.safetensors', { size: FILE.length + 1 }),
    // A local source, relative to the registry file.
    { ...entry('t.local', ''), url: 'local.bin' },
  ];
  writeFileSync(registryFile, JSON.stringify({ entries }));
  writeFileSync(join(dir, 'local.bin'), FILE);
  // Entries without a pinned sha256 exist only in code (the built-in registry follows what publishers publish).
  const unpinned = (name: string, url: string): RegistryEntry => ({
    name,
    arch: 'efficientnet_b0',
    family: 'timm',
    format: 'safetensors',
    naming: 'timm',
    url,
    preprocessing: { inputSize: 224, mean: [0, 0, 0], std: [1, 1, 1] },
    labels: 'imagenet-1k',
    origin: 'test',
  });
  unpinnedRegistry = new Registry([
    unpinned('s.etag', `${base}/etag/model.safetensors`),
    unpinned('s.etag-wrong', `${base}/etag-wrong/model.safetensors`),
    unpinned('s.plain', `${base}/plain/model.safetensors`),
    unpinned('hf_b0.test', 'https://huggingface.co/timm/hf_b0.test/resolve/main/model.safetensors'),
  ]);
});
afterAll(() => {
  held.resolve();
  return server.stop();
});

let unpinnedRegistry: Registry;
/** Holds the gated route's transfer open until a test releases it. */
const gate = deferred();
/** Holds the held route's transfer after its first KiB until the abort test releases it. */
const held = deferred();

describe('pull over real HTTP on loopback', () => {
  it('downloads, verifies, reports progress, then serves the cached file with the server gone', async () => {
    const cacheDir = tempDir();
    const progress: PullProgress[] = [];
    const r = await pull('t.plain', { registry: registryFile, env: cleanEnv(), cacheDir, onProgress: (p) => progress.push(p) });
    expect(r).toMatchObject({ cached: false, size: FILE.length, sha256: sha256(FILE), checksumSource: 'pinned', resumedFrom: 0 });
    expect(readFileSync(r.path)).toEqual(Buffer.from(FILE));
    expect(r.path).toBe(join(cacheDir, 'models', 't.plain', 'model.safetensors'));
    expect(readdirSync(join(cacheDir, 'models', 't.plain')).sort()).toEqual(['meta.json', 'model.safetensors']);
    const last = progress.filter((p) => p.phase === 'download').at(-1)!;
    expect(last).toMatchObject({ bytes: FILE.length, total: FILE.length });
    expect(last.rate).toBeGreaterThan(0);
    expect(progress.some((p) => p.phase === 'verify')).toBe(true);
    const before = server.count('/plain/model.safetensors');
    const again = await pull('t.plain', { registry: registryFile, env: cleanEnv({ EFFNET_OFFLINE: '1' }), cacheDir });
    expect(again).toMatchObject({ cached: true, path: r.path, sha256: sha256(FILE) });
    expect(server.count('/plain/model.safetensors')).toBe(before);
  });

  it('resumes a download cut halfway with an HTTP Range request', async () => {
    const cacheDir = tempDir();
    const r = await pull('t.cut', { registry: registryFile, env: cleanEnv(), cacheDir, ...fast });
    expect(r.sha256).toBe(sha256(FILE));
    expect(r.resumedFrom).toBe(120_000);
    const hits = server.hits.filter((h) => h.path === '/cut/model.safetensors');
    expect(hits.map((h) => h.range)).toEqual([undefined, 'bytes=120000-']);
  });

  it('resumes a partial file left by an earlier process', async () => {
    const cacheDir = tempDir();
    const env = cleanEnv();
    const reg = await Registry.load({ registry: registryFile, env });
    const paths = cachePaths(cacheDir, reg.get('t.plain'));
    const { mkdirSync } = await import('node:fs');
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.partial, FILE.subarray(0, 77_777));
    const n = server.hits.length;
    const r = await pull('t.plain', { registry: reg, env, cacheDir });
    expect(r).toMatchObject({ resumedFrom: 77_777, sha256: sha256(FILE) });
    expect(server.hits.slice(n).map((h) => h.range)).toEqual(['bytes=77777-']);
    expect(existsSync(paths.partial)).toBe(false);
  });

  it('restarts from zero when the server ignores Range', async () => {
    const cacheDir = tempDir();
    const r = await pull('t.norange', { registry: registryFile, env: cleanEnv(), cacheDir, ...fast });
    expect(r.sha256).toBe(sha256(FILE));
    expect(r.resumedFrom).toBe(0);
  });

  it('a wrong checksum fails loudly and leaves nothing in the cache', async () => {
    const cacheDir = tempDir();
    const err = await pull('t.wrong', { registry: registryFile, env: cleanEnv(), cacheDir }).catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect(err.message).toMatch(new RegExp(`sha256 of .*/wrong/model.safetensors is ${sha256(OTHER)}, but the registry entry .* says ${sha256(FILE)}; the download was deleted`));
    expect(existsSync(join(cacheDir, 'models', 't.wrong'))).toBe(false);
    expect(await listCached({ cacheDir })).toEqual([]);
  });

  it('a size that differs from the entry fails the same way', async () => {
    const cacheDir = tempDir();
    // The server announces its length: the mismatch is caught before a byte is kept.
    await expect(pull('t.size', { registry: registryFile, env: cleanEnv(), cacheDir })).rejects.toThrow(/the server announces 300000 bytes but the entry pins 300001; nothing was kept/);
    expect(existsSync(join(cacheDir, 'models', 't.size'))).toBe(false);
  });

  it('404 is a clear error at once, without retries', async () => {
    const cacheDir = tempDir();
    const n = server.hits.length;
    const err = await pull('t.e404', { registry: registryFile, env: cleanEnv(), cacheDir, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err).toMatchObject({ status: 404, attempts: 1 });
    expect(err.message).toMatch(/HTTP 404 \(not found\): check the entry's url; for a private Hugging Face mirror set HF_ENDPOINT/);
    expect(server.hits.length - n).toBe(1);
  });

  it('500 is retried a bounded number of times, then a clear error', async () => {
    const cacheDir = tempDir();
    const n = server.count('/e500/model.safetensors');
    const err = await pull('t.e500', { registry: registryFile, env: cleanEnv(), cacheDir, ...fast }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/HTTP 500 .* \(gave up after 3 attempts\)/);
    expect(server.count('/e500/model.safetensors') - n).toBe(3);
    expect(existsSync(join(cacheDir, 'models', 't.e500'))).toBe(false);
  });

  it('transient 503s are retried until the file arrives', async () => {
    const r = await pull('t.flaky', { registry: registryFile, env: cleanEnv(), cacheDir: tempDir(), ...fast });
    expect(r.sha256).toBe(sha256(FILE));
    expect(server.count('/flaky/model.safetensors')).toBe(3);
  });

  it('two concurrent pulls of one entry download it once and end with one good file', async () => {
    const cacheDir = tempDir();
    const opts = { registry: registryFile, env: cleanEnv(), cacheDir };
    const waits: string[] = [];
    // The transfer is held open until the second pull reports that it waits for the first one's lock.
    const onProgress = (who: string) => (p: PullProgress) => {
      if (p.phase !== 'wait') return;
      waits.push(who);
      gate.resolve();
    };
    const [a, b] = await Promise.all([pull('t.gated', { ...opts, onProgress: onProgress('a') }), pull('t.gated', { ...opts, onProgress: onProgress('b') })]);
    expect(server.count('/gated/model.safetensors')).toBe(1);
    expect(a.path).toBe(b.path);
    expect([a.cached, b.cached].sort()).toEqual([false, true]);
    expect([a.waitedForLock, b.waitedForLock].sort()).toEqual([false, true]);
    expect(waits).toHaveLength(1);
    expect(sha256(readFileSync(a.path))).toBe(sha256(FILE));
    expect(readdirSync(join(cacheDir, 'models', 't.gated')).sort()).toEqual(['meta.json', 'model.safetensors']);
  });

  it('an aborted pull keeps its partial file and releases the lock; the next pull resumes it', async () => {
    const cacheDir = tempDir();
    const opts = { registry: registryFile, env: cleanEnv(), cacheDir };
    const dir = join(cacheDir, 'models', 't.held');
    const partial = join(dir, 'model.safetensors.partial');
    const ctrl = new AbortController();
    const pending = pull('t.held', { ...opts, signal: ctrl.signal }).catch((e) => e);
    // The server sends 1 KiB and holds the rest: abort once those bytes are on disk.
    for (let i = 0; i < 500 && !(existsSync(partial) && statSync(partial).size >= 1024); i++) await new Promise((r) => setTimeout(r, 10));
    ctrl.abort(new Error('stopped by the user'));
    const err = await pending;
    expect(err.message).toBe('stopped by the user');
    expect(readdirSync(dir)).toEqual(['model.safetensors.partial']);
    expect(statSync(partial).size).toBe(1024);
    held.resolve();
    const r = await pull('t.held', opts);
    expect(r).toMatchObject({ resumedFrom: 1024, sha256: sha256(FILE) });
  });

  it('offline mode never touches the network and says what is missing', async () => {
    const cacheDir = tempDir();
    const n = server.hits.length;
    for (const env of [cleanEnv({ EFFNET_OFFLINE: '1' }), cleanEnv({ HF_HUB_OFFLINE: '1' })]) {
      const err = await pull('t.plain', { registry: registryFile, env, cacheDir }).catch((e) => e);
      expect(err).toBeInstanceOf(OfflineError);
      expect(err.message).toBe(
        `"t.plain" is not in the cache (${join(cacheDir, 'models', 't.plain', 'model.safetensors')}) and ${env.EFFNET_OFFLINE ? 'EFFNET_OFFLINE=1' : 'HF_HUB_OFFLINE=1'} forbids downloading; ` +
          `run "effnet pull t.plain" where the network is reachable (with the same EFFNET_CACHE), or unset ${env.EFFNET_OFFLINE ? 'EFFNET_OFFLINE' : 'HF_HUB_OFFLINE'}`,
      );
    }
    await expect(pull('t.plain', { registry: registryFile, env: cleanEnv(), cacheDir, offline: true })).rejects.toThrow(/offline mode forbids downloading/);
    expect(server.hits.length).toBe(n);
    // A local source is not the network.
    const local = await pull('t.local', { registry: registryFile, env: cleanEnv({ EFFNET_OFFLINE: '1' }), cacheDir });
    expect(local.sha256).toBe(sha256(FILE));
  });

  it("without a pinned sha256, trusts a sha256 ETag, rejects a wrong one, else records the computed hash", async () => {
    const cacheDir = tempDir();
    expect(await pull('s.etag', { registry: unpinnedRegistry, env: cleanEnv(), cacheDir })).toMatchObject({ checksumSource: 'server', sha256: sha256(FILE) });
    await expect(pull('s.etag-wrong', { registry: unpinnedRegistry, env: cleanEnv(), cacheDir })).rejects.toThrow(/but the server's ETag header says/);
    expect(existsSync(join(cacheDir, 'models', 's.etag-wrong'))).toBe(false);
    expect(await pull('s.plain', { registry: unpinnedRegistry, env: cleanEnv(), cacheDir })).toMatchObject({ checksumSource: 'computed', sha256: sha256(FILE) });
  });

  it('HF_ENDPOINT replaces huggingface.co; the redirect X-Linked-Etag is checked; HF_TOKEN goes only to that host', async () => {
    expect(effectiveUrl('https://huggingface.co/timm/x/resolve/main/model.safetensors', { HF_ENDPOINT: 'http://mirror.local:8080/' })).toBe(
      'http://mirror.local:8080/timm/x/resolve/main/model.safetensors',
    );
    expect(effectiveUrl('https://example.org/huggingface.co/x', { HF_ENDPOINT: 'http://m' })).toBe('https://example.org/huggingface.co/x');
    const cacheDir = tempDir();
    const r = await pull('hf_b0.test', { registry: unpinnedRegistry, env: cleanEnv({ HF_ENDPOINT: base, HF_TOKEN: 'secret' }), cacheDir });
    expect(r).toMatchObject({ checksumSource: 'server', sha256: sha256(FILE), size: FILE.length });
    // The mirror here is plain http, so the token stays home; over https it goes to the hub's host and no other.
    const hf = server.hits.filter((h) => h.path.startsWith('/timm/hf_b0.test') || h.path === '/cdn/abc');
    expect(hf.map((h) => h.auth)).toEqual([undefined, undefined]);
    const headers = hubAuthHeaders({ HF_TOKEN: 'secret', HF_ENDPOINT: 'https://mirror.example' });
    expect(headers(new URL('https://mirror.example/timm/x'))).toEqual({ authorization: 'Bearer secret' });
    expect(headers(new URL('https://huggingface.co/timm/x'))).toEqual({ authorization: 'Bearer secret' });
    expect(headers(new URL('http://mirror.example/timm/x'))).toEqual({});
    expect(headers(new URL('https://cdn.example/x'))).toEqual({});
  });

  it('zoo verify re-hashes the cache and zoo rm removes an entry', async () => {
    const cacheDir = tempDir();
    const opts = { registry: registryFile, env: cleanEnv(), cacheDir };
    const r = await pull('t.plain', opts);
    await pull('t.local', opts);
    expect((await verifyCache({ cacheDir })).map((v) => [v.name, v.ok])).toEqual([
      ['t.local', true],
      ['t.plain', true],
    ]);
    const corrupt = Buffer.from(FILE);
    corrupt[1000] = corrupt[1000]! ^ 0xff;
    writeFileSync(r.path, corrupt);
    const bad = (await verifyCache({ cacheDir, names: ['t.plain'] }))[0]!;
    expect(bad).toMatchObject({ ok: false, expected: sha256(FILE), actual: sha256(corrupt) });
    expect(bad.problem).toMatch(/sha256 changed since it was pulled; run "effnet zoo rm t.plain"/);
    expect(await removeCached('t.plain', { cacheDir })).toMatchObject({ removed: true });
    expect(existsSync(join(cacheDir, 'models', 't.plain'))).toBe(false);
    expect(await removeCached('t.plain', { cacheDir })).toMatchObject({ removed: false });
    expect((await listCached({ cacheDir })).map((c) => c.name)).toEqual(['t.local']);
  });

  it('a cache directory copied to another machine (or path) serves offline and verifies', async () => {
    const cacheDir = tempDir();
    await pull('t.plain', { registry: registryFile, env: cleanEnv(), cacheDir });
    const copy = join(tempDir(), 'copied-cache');
    cpSync(cacheDir, copy, { recursive: true });
    const n = server.hits.length;
    const r = await pull('t.plain', { registry: registryFile, env: cleanEnv({ EFFNET_OFFLINE: '1', EFFNET_CACHE: copy }) });
    expect(r).toMatchObject({ cached: true, path: join(copy, 'models', 't.plain', 'model.safetensors') });
    expect((await verifyCache({ env: { EFFNET_CACHE: copy } })).map((v) => [v.name, v.ok, v.path])).toEqual([['t.plain', true, r.path]]);
    expect(server.hits.length).toBe(n);
  });

  it('finds the cache directory from EFFNET_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(resolveCacheDir(undefined, { EFFNET_CACHE: '/a/b', XDG_CACHE_HOME: '/x' })).toBe('/a/b');
    expect(resolveCacheDir(undefined, { XDG_CACHE_HOME: '/x' })).toBe('/x/effnet');
    expect(resolveCacheDir(undefined, {})).toMatch(/\.cache\/effnet$/);
    expect(resolveCacheDir('/explicit', { EFFNET_CACHE: '/a/b' })).toBe('/explicit');
  });
});

afterAll(removeTempDirs);
