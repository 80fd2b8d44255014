import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { resolveCacheDir, writeFileAtomic } from '@effnet/core';
import type { RegistryEntry } from './registry/schema.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Where pulled weights live: core's cache directory (`cacheDir`, EFFNET_CACHE, $XDG_CACHE_HOME/effnet, ~/.cache/effnet). */
export { resolveCacheDir };

/** The directory of one entry inside the cache: `<cache>/models/<name>/`. */
export function entryDir(cacheDir: string, name: string): string {
  return join(cacheDir, 'models', name);
}

/** The file name an entry is stored under: the last segment of its URL or path (`model.safetensors`). */
export function entryFileName(entry: Pick<RegistryEntry, 'url' | 'format'>): string {
  let last = '';
  try {
    last = /^[a-z]+:\/\//i.test(entry.url) ? decodeURIComponent(new URL(entry.url).pathname.split('/').pop() ?? '') : basename(entry.url);
  } catch {
    last = '';
  }
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(last) && !last.endsWith('.partial') && !last.endsWith('.lock') && last !== 'meta.json' ? last : `model.${entry.format}`;
}

export interface CachePaths {
  dir: string;
  /** The verified file. */
  file: string;
  /** Where a download in progress streams to (kept for resuming). */
  partial: string;
  /** Held by the process that downloads. */
  lock: string;
  /** What was verified, and how. */
  meta: string;
}

export function cachePaths(cacheDir: string, entry: Pick<RegistryEntry, 'name' | 'url' | 'format'>): CachePaths {
  const dir = entryDir(cacheDir, entry.name);
  const file = join(dir, entryFileName(entry));
  return { dir, file, partial: `${file}.partial`, lock: `${file}.lock`, meta: join(dir, 'meta.json') };
}

/** Where a cached file's expected checksum came from. */
export type ChecksumSource = 'pinned' | 'server' | 'computed';

/** Written next to each verified file. */
export interface CacheMeta {
  name: string;
  url: string;
  /** The file's name inside the entry's directory (relative, so that a cache directory can be copied elsewhere). */
  file: string;
  size: number;
  sha256: string;
  checksumSource: ChecksumSource;
  arch: string;
  family: string;
  format: string;
  pulledAt: string;
}

export async function readMeta(path: string): Promise<CacheMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as CacheMeta;
    return typeof m.sha256 === 'string' && typeof m.size === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}

export async function writeMeta(path: string, meta: CacheMeta): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(meta, null, 2) + '\n'));
}

/**
 * The cached, verified file of an entry, or undefined. A file counts when its meta.json records it, its size matches,
 * and what the entry pins (sha256, its prefix, size) agrees with what was verified. It is not re-hashed here
 * (`verifyCache` does that).
 */
export async function findCached(cacheDir: string, entry: RegistryEntry): Promise<{ paths: CachePaths; meta: CacheMeta } | undefined> {
  const paths = cachePaths(cacheDir, entry);
  const meta = await readMeta(paths.meta);
  if (!meta || meta.name !== entry.name) return undefined;
  if (entry.sha256 && meta.sha256 !== entry.sha256) return undefined;
  if (entry.sha256Prefix && !meta.sha256.startsWith(entry.sha256Prefix)) return undefined;
  if (entry.size && meta.size !== entry.size) return undefined;
  try {
    const s = await stat(paths.file);
    if (!s.isFile() || s.size !== meta.size) return undefined;
  } catch {
    return undefined;
  }
  return { paths, meta };
}
