import { readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type CacheMeta, type Env, entryDir, readMeta, resolveCacheDir } from './cache.js';
import { acquireLock } from './lock.js';
import { hashFile } from './pull.js';
import { Registry } from './registry/registry.js';

export interface CacheOptions {
  cacheDir?: string;
  env?: Env;
}

export interface CachedModel {
  name: string;
  dir: string;
  meta: CacheMeta;
}

/** Every entry with a verified file in the cache (by its meta.json). */
export async function listCached(o: CacheOptions = {}): Promise<CachedModel[]> {
  const root = join(resolveCacheDir(o.cacheDir, o.env), 'models');
  let names: string[];
  try {
    names = (await readdir(root)).sort();
  } catch {
    return [];
  }
  const out: CachedModel[] = [];
  for (const name of names) {
    const dir = join(root, name);
    const meta = await readMeta(join(dir, 'meta.json'));
    if (meta) out.push({ name, dir, meta });
  }
  return out;
}

export interface VerifyReport {
  name: string;
  path: string;
  ok: boolean;
  /** The sha256 recorded when the file was pulled. */
  expected: string;
  actual?: string;
  /** What is wrong, in words, with what to do about it. */
  problem?: string;
  /** Leftovers next to it (a partial download, a lock). */
  leftovers: string[];
}

/**
 * Re-hashes every cached file (or the named ones) and compares it with the sha256 recorded at pull time and with the
 * registry's pinned sha256 where the registry is given.
 */
export async function verifyCache(o: CacheOptions & { names?: string[]; registry?: Registry; onProgress?: (name: string, bytes: number, total: number) => void } = {}): Promise<VerifyReport[]> {
  const cached = await listCached(o);
  const want = o.names ? new Set(o.names) : undefined;
  const reports: VerifyReport[] = [];
  for (const c of cached) {
    if (want && !want.has(c.name)) continue;
    const leftovers = (await readdir(c.dir)).filter((f) => f.endsWith('.partial') || f.endsWith('.lock'));
    const file = join(c.dir, basename(c.meta.file));
    const base: VerifyReport = { name: c.name, path: file, ok: false, expected: c.meta.sha256, leftovers };
    try {
      const s = await stat(file);
      if (s.size !== c.meta.size) {
        reports.push({ ...base, problem: `size is ${s.size} bytes, ${c.meta.size} were verified; run "effnet zoo rm ${c.name}" and pull it again` });
        continue;
      }
      const h = await hashFile(file, { onProgress: (b) => o.onProgress?.(c.name, b, s.size) });
      const pinned = o.registry?.find(c.name)?.sha256;
      if (h.sha256 !== c.meta.sha256) reports.push({ ...base, actual: h.sha256, problem: `sha256 changed since it was pulled; run "effnet zoo rm ${c.name}" and pull it again` });
      else if (pinned && pinned !== h.sha256) reports.push({ ...base, actual: h.sha256, problem: `the registry now pins ${pinned}; pull it again to get the new file` });
      else reports.push({ ...base, ok: true, actual: h.sha256 });
    } catch (e) {
      reports.push({ ...base, problem: `cannot read the file (${(e as Error).message}); run "effnet zoo rm ${c.name}" and pull it again` });
    }
  }
  // Directories that hold files but no readable meta.json cannot be verified: say so rather than skip them.
  const root = join(resolveCacheDir(o.cacheDir, o.env), 'models');
  const dirs = await readdir(root).catch(() => [] as string[]);
  for (const name of dirs.sort()) {
    if ((want && !want.has(name)) || cached.some((c) => c.name === name)) continue;
    const files = await readdir(join(root, name)).catch(() => [] as string[]);
    if (!files.length) continue;
    const leftovers = files.filter((f) => f.endsWith('.partial') || f.endsWith('.lock'));
    const unfinished = files.every((f) => f.endsWith('.partial') || f.endsWith('.lock'));
    reports.push({
      name,
      path: join(root, name),
      ok: false,
      expected: '',
      leftovers,
      problem: unfinished
        ? `an unfinished download; "effnet pull ${name}" resumes it, "effnet zoo rm ${name}" removes it`
        : `meta.json is missing or unreadable, so ${files.filter((f) => f !== 'meta.json').join(', ')} cannot be verified; run "effnet zoo rm ${name}" and pull it again`,
    });
  }
  if (want) for (const n of want) if (!reports.some((r) => r.name === n)) reports.push({ name: n, path: '', ok: false, expected: '', leftovers: [], problem: 'not in the cache' });
  return reports;
}

/**
 * Removes an entry's directory from the cache (waiting for a download of it in progress). A bare architecture name
 * resolves through the registry as for pull. Returns whether anything was there.
 */
export async function removeCached(name: string, o: CacheOptions & { registry?: Registry } = {}): Promise<{ removed: boolean; dir: string }> {
  const cacheDir = resolveCacheDir(o.cacheDir, o.env);
  const resolved = o.registry?.find(name)?.name ?? name;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(resolved)) return { removed: false, dir: '' };
  const dir = entryDir(cacheDir, resolved);
  try {
    await stat(dir);
  } catch {
    return { removed: false, dir };
  }
  const entries = await readdir(dir);
  const locks = entries.filter((f) => f.endsWith('.lock'));
  const held = await Promise.all(locks.map((l) => acquireLock(join(dir, l), { timeoutMs: 10 * 60_000 })));
  try {
    await rm(dir, { recursive: true, force: true });
  } finally {
    for (const l of held) await l.release();
  }
  return { removed: true, dir };
}
