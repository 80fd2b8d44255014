import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, cachePaths, LockTimeoutError, pull, Registry } from '../src/index.js';
import { blob, cleanEnv, deferred, removeTempDirs, sendBody, sha256, tempDir, TestServer } from './helpers.js';

const FILE = blob(400_000, 5);
const server = new TestServer();
let registryFile = '';
const twoWaiting = deferred();
let waiting = 0;
const waited = () => ++waiting === 2 && twoWaiting.resolve();

beforeAll(async () => {
  const base = await server.start();
  server.route('/slow/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { chunk: 16_384, delayMs: 5 }));
  // Held open until the two other pullers report that they wait for the lock (or 20 s pass).
  server.route('/slower/model.safetensors', (req, res, n) => sendBody(req, res, FILE, n, { gate: Promise.race([twoWaiting.promise, new Promise((r) => setTimeout(r, 20_000))]) }));
  const dir = tempDir();
  registryFile = join(dir, 'registry.json');
  writeFileSync(
    registryFile,
    JSON.stringify({
      entries: ['slow', 'slower'].map((p) => ({ name: `l.${p}`, arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: `${base}/${p}/model.safetensors`, sha256: sha256(FILE) })),
    }),
  );
});
afterAll(() => server.stop());

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

describe('the download lock', () => {
  it('takes over a lock whose process has exited', async () => {
    const dir = tempDir();
    const path = join(dir, 'x.lock');
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), token: 'old', since: new Date().toISOString() }));
    const lock = await acquireLock(path, { timeoutMs: 2000 });
    expect(lock.waited).toBe(false);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
    expect(existsSync(path)).toBe(false);
  });

  it('takes over a lock that stopped being refreshed, and refreshes its own', async () => {
    const dir = tempDir();
    const path = join(dir, 'x.lock');
    // A live process (this one) on another host: only the age can tell.
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: 'elsewhere', token: 'old', since: '2000-01-01T00:00:00Z' }));
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const lock = await acquireLock(path, { staleMs: 1000, heartbeatMs: 50 });
    // Longer than staleMs later, a second taker still finds the lock fresh: the holder kept refreshing it.
    await new Promise((r) => setTimeout(r, 1500));
    await expect(acquireLock(path, { staleMs: 1000, timeoutMs: 300 })).rejects.toThrow(LockTimeoutError);
    await lock.release();
  });

  it('waits for a live holder and gives up after its timeout with a clear error', async () => {
    const dir = tempDir();
    const path = join(dir, 'x.lock');
    const held = await acquireLock(path);
    const err = await acquireLock(path, { timeoutMs: 150 }).catch((e) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(err.message).toMatch(new RegExp(`held by process ${process.pid} on .*; if no effnet pull is running, delete the lock file`));
    await held.release();
    const next = await acquireLock(path, { timeoutMs: 1000 });
    await next.release();
  });

  it('a pull with a stale lock left behind by a dead process still completes', async () => {
    const cacheDir = tempDir();
    const reg = await Registry.load({ registry: registryFile, env: cleanEnv() });
    const paths = cachePaths(cacheDir, reg.get('l.slow'));
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.lock, JSON.stringify({ pid: deadPid(), host: hostname(), token: 'dead', since: new Date().toISOString() }));
    const r = await pull('l.slow', { registry: reg, env: cleanEnv(), cacheDir });
    expect(r.sha256).toBe(sha256(FILE));
    expect(readdirSync(paths.dir).sort()).toEqual(['meta.json', 'model.safetensors']);
  });
});

describe('pulls from separate processes', () => {
  const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  const src = fileURLToPath(new URL('../src', import.meta.url));

  it('three processes pulling one entry at once download it once and end with one good file', async () => {
    // The child processes run the built package, which nx builds before it tests (test depends on build).
    if (!existsSync(dist)) throw new Error(`${dist} is missing: build first with npx nx run @effnet/zoo:build`);
    const cacheDir = tempDir();
    const n = server.count('/slower/model.safetensors');
    const script =
      `import { pull } from ${JSON.stringify(pathToFileURL(dist).href)};\n` +
      `const r = await pull('l.slower', { registry: ${JSON.stringify(registryFile)}, cacheDir: ${JSON.stringify(cacheDir)}, env: {}, ` +
      `onProgress: (p) => p.phase === 'wait' && process.stderr.write('WAITING\\n') });\n` +
      `process.stdout.write(JSON.stringify({ cached: r.cached, waited: r.waitedForLock, path: r.path, sha256: r.sha256 }));\n`;
    const child = () =>
      new Promise<{ cached: boolean; waited: boolean; path: string; sha256: string }>((resolve, reject) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => {
          err += d;
          if (String(d).includes('WAITING')) waited();
        });
        const t = setTimeout(() => p.kill(), 30_000);
        p.on('close', (code) => {
          clearTimeout(t);
          if (code === 0) resolve(JSON.parse(out));
          else reject(new Error(`child exited ${code}: ${err}`));
        });
      });
    const results = await Promise.all([
      child(),
      child(),
      pull('l.slower', { registry: registryFile, env: cleanEnv(), cacheDir, onProgress: (p) => p.phase === 'wait' && waited() }).then((r) => ({ cached: r.cached, waited: r.waitedForLock, path: r.path, sha256: r.sha256 })),
    ]);
    expect(server.count('/slower/model.safetensors') - n).toBe(1);
    // The other two waited for the first one's lock, then used its verified file.
    expect(results.filter((r) => r.waited && r.cached)).toHaveLength(2);
    expect(new Set(results.map((r) => r.path)).size).toBe(1);
    expect(results.every((r) => r.sha256 === sha256(FILE))).toBe(true);
    expect(results.filter((r) => !r.cached)).toHaveLength(1);
    expect(sha256(readFileSync(results[0]!.path))).toBe(sha256(FILE));
    expect(readdirSync(join(cacheDir, 'models', 'l.slower')).sort()).toEqual(['meta.json', 'model.safetensors']);
  });
});

afterAll(removeTempDirs);
