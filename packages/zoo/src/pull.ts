import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rmdir, stat, unlink } from 'node:fs/promises';
import { commitFile } from '@effnet/core';
import { basename } from 'node:path';
import { type CacheMeta, type CachePaths, type ChecksumSource, type Env, cachePaths, findCached, resolveCacheDir, writeMeta } from './cache.js';
import { copyLocal, download, type DownloadResult, type RetryOptions, type TransferProgress } from './download.js';
import { ChecksumError, OfflineError } from './errors.js';
import { acquireLock } from './lock.js';
import { Registry, type RegistryOptions } from './registry/registry.js';
import { isRemote, type RegistryEntry } from './registry/schema.js';

export interface PullProgress extends Partial<TransferProgress> {
  name: string;
  /** 'wait': another process is downloading the same file; 'download'; 'verify': hashing the file. */
  phase: 'wait' | 'download' | 'verify';
  bytes: number;
}

export interface PullOptions extends Omit<RegistryOptions, 'registry'> {
  /** Registry files to add, or a Registry already loaded. */
  registry?: string | readonly string[] | Registry;
  /** Default: EFFNET_CACHE, else $XDG_CACHE_HOME/effnet, else ~/.cache/effnet. */
  cacheDir?: string;
  /** Never touch the network (also EFFNET_OFFLINE=1 or HF_HUB_OFFLINE=1). */
  offline?: boolean;
  onProgress?: (p: PullProgress) => void;
  signal?: AbortSignal;
  retry?: RetryOptions;
  idleTimeoutMs?: number;
  /** How the download lock is handled: a lock not refreshed for staleMs is taken over (default 5 min). */
  lock?: { staleMs?: number; timeoutMs?: number };
  env?: Env;
}

export interface PullResult {
  name: string;
  entry: RegistryEntry;
  /** The verified file in the cache. */
  path: string;
  size: number;
  sha256: string;
  checksumSource: ChecksumSource;
  /** true when the file was already in the cache (no transfer happened in this call). */
  cached: boolean;
  /** true when another process (or call) was downloading it and we used its result. */
  waitedForLock: boolean;
  /** For a transfer: HTTP requests made and where the transfer resumed from. */
  requests?: number;
  resumedFrom?: number;
}

const truthy = (v: string | undefined) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';

/** Which setting forbids the network, if any. */
export function offlineFlag(o: { offline?: boolean; env?: Env }): string | undefined {
  const env = o.env ?? process.env;
  if (o.offline) return 'offline mode';
  if (truthy(env.EFFNET_OFFLINE)) return 'EFFNET_OFFLINE=1';
  if (truthy(env.HF_HUB_OFFLINE)) return 'HF_HUB_OFFLINE=1';
  return undefined;
}

const HF = 'https://huggingface.co';

/** The URL actually fetched: HF_ENDPOINT replaces https://huggingface.co (private mirrors, as huggingface_hub does). */
export function effectiveUrl(url: string, env: Env = process.env): string {
  const endpoint = env.HF_ENDPOINT?.replace(/\/+$/, '');
  if (endpoint && (url === HF || url.startsWith(`${HF}/`))) return endpoint + url.slice(HF.length);
  return url;
}

/** HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) as a bearer token, sent only to the Hugging Face host in use and only over https. */
export function hubAuthHeaders(env: Env): (url: URL) => Record<string, string> {
  const token = env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  const hosts = new Set([new URL(HF).host]);
  if (env.HF_ENDPOINT) {
    try {
      hosts.add(new URL(env.HF_ENDPOINT).host);
    } catch {
      /* an invalid HF_ENDPOINT fails when it is fetched */
    }
  }
  return (url): Record<string, string> => (token && url.protocol === 'https:' && hosts.has(url.host) ? { authorization: `Bearer ${token}` } : {});
}

/** sha256 (and md5 when asked) of a file, streaming. */
export async function hashFile(path: string, o: { md5?: boolean; onProgress?: (bytes: number) => void; signal?: AbortSignal } = {}): Promise<{ sha256: string; md5?: string; size: number }> {
  const sha = createHash('sha256');
  const md5 = o.md5 ? createHash('md5') : undefined;
  let size = 0;
  let last = 0;
  for await (const chunk of createReadStream(path, { signal: o.signal })) {
    const b = chunk as Buffer;
    sha.update(b);
    md5?.update(b);
    size += b.length;
    if (o.onProgress && Date.now() - last > 100) {
      last = Date.now();
      o.onProgress(size);
    }
  }
  o.onProgress?.(size);
  return { sha256: sha.digest('hex'), md5: md5?.digest('hex'), size };
}


/**
 * Checks the downloaded file against what is known about it, in order of trust: the entry's pinned sha256, else a
 * sha256 the server vouches for (X-Linked-Etag / ETag), else none (the computed one is recorded). sha256 prefixes
 * (torchvision file names), md5 (Keras) and sizes are checked when the entry has them. On any mismatch the partial
 * file is deleted and ChecksumError says what was expected, from where, and what arrived.
 */
async function verify(entry: RegistryEntry, paths: CachePaths, url: string, dl: DownloadResult, o: PullOptions): Promise<{ sha256: string; size: number; source: ChecksumSource }> {
  const fail = async (kind: ChecksumError['kind'], expected: string, actual: string, from: string): Promise<never> => {
    await unlink(paths.partial).catch(() => undefined);
    throw new ChecksumError(entry.name, url, kind, expected, actual, from);
  };
  const size = (await stat(paths.partial)).size;
  if (entry.size !== undefined && size !== entry.size) await fail('size', String(entry.size), String(size), 'the registry entry');
  const h = await hashFile(paths.partial, {
    md5: entry.md5 !== undefined,
    signal: o.signal,
    onProgress: (bytes) => o.onProgress?.({ name: entry.name, phase: 'verify', bytes, total: size }),
  });
  let source: ChecksumSource = 'computed';
  if (entry.sha256) {
    if (h.sha256 !== entry.sha256) await fail('sha256', entry.sha256, h.sha256, `the registry entry (${entry.origin})`);
    source = 'pinned';
  } else if (dl.serverSha256) {
    if (h.sha256 !== dl.serverSha256) await fail('sha256', dl.serverSha256, h.sha256, `the server's ${dl.serverSha256Header} header`);
    source = 'server';
  }
  if (entry.sha256Prefix) {
    if (!h.sha256.startsWith(entry.sha256Prefix)) await fail('sha256-prefix', `${entry.sha256Prefix}...`, h.sha256, "the publisher's file name");
    if (source === 'computed') source = 'pinned';
  }
  if (entry.md5) {
    if (h.md5 !== entry.md5) await fail('md5', entry.md5, h.md5 ?? '', `the registry entry (${entry.origin})`);
    if (source === 'computed') source = 'pinned';
  }
  return { sha256: h.sha256, size: h.size, source };
}

/**
 * Makes `name`'s weight file available in the cache and returns its path. A file already there (and verified when
 * it was pulled) is used as is. Otherwise it streams to a temporary file in the cache (resuming a partial one with
 * HTTP Range), is verified, and is renamed into place atomically; a lock file makes concurrent pulls of the same
 * entry (other processes included) wait for the first and then use its file. Offline, a missing file is an
 * OfflineError that says what is missing and where.
 */
export async function pull(name: string, o: PullOptions = {}): Promise<PullResult> {
  const env = o.env ?? process.env;
  const registry = o.registry instanceof Registry ? o.registry : await Registry.load({ ...o, registry: o.registry as string | string[] | undefined, env });
  const entry = registry.get(name);
  const cacheDir = resolveCacheDir(o.cacheDir, env);
  const done = (hit: { paths: CachePaths; meta: CacheMeta }, waited: boolean): PullResult => ({
    name: entry.name,
    entry,
    path: hit.paths.file,
    size: hit.meta.size,
    sha256: hit.meta.sha256,
    checksumSource: hit.meta.checksumSource,
    cached: true,
    waitedForLock: waited,
  });

  const hit = await findCached(cacheDir, entry);
  if (hit) return done(hit, false);
  const paths = cachePaths(cacheDir, entry);
  const url = effectiveUrl(entry.url, env);
  const flag = offlineFlag({ offline: o.offline, env });
  if (flag && isRemote(url)) throw new OfflineError(entry.name, paths.file, flag);

  const created = !(await stat(paths.dir).catch(() => null));
  await mkdir(paths.dir, { recursive: true });
  let ok = false;
  // A failed pull leaves no empty directory behind (a partial download stays, to resume from).
  const tidy = async () => {
    if (!ok && created) await rmdir(paths.dir).catch(() => undefined);
  };
  let lock: Awaited<ReturnType<typeof acquireLock>>;
  try {
    lock = await acquireLock(paths.lock, {
      ...o.lock,
      signal: o.signal,
      onWait: () => o.onProgress?.({ name: entry.name, phase: 'wait', bytes: 0 }),
    });
  } catch (e) {
    await tidy();
    throw e;
  }
  try {
    // Whoever held the lock may have finished the job.
    const after = await findCached(cacheDir, entry);
    ok = Boolean(after);
    if (after) return done(after, lock.waited);
    const onProgress = (p: TransferProgress) => o.onProgress?.({ name: entry.name, phase: 'download', ...p });
    const dl = isRemote(url)
      ? await download({ url, dest: paths.partial, signal: o.signal, retry: o.retry, idleTimeoutMs: o.idleTimeoutMs, expectedSize: entry.size, headersFor: hubAuthHeaders(env), onProgress })
      : await copyLocal(url, paths.partial, onProgress, o.signal);
    const v = await verify(entry, paths, url, dl, o);
    await commitFile(paths.partial, paths.file);
    const meta: CacheMeta = {
      name: entry.name,
      url,
      file: basename(paths.file),
      size: v.size,
      sha256: v.sha256,
      checksumSource: v.source,
      arch: entry.arch,
      family: entry.family,
      format: entry.format,
      pulledAt: new Date().toISOString(),
    };
    await writeMeta(paths.meta, meta);
    ok = true;
    return {
      name: entry.name,
      entry,
      path: paths.file,
      size: v.size,
      sha256: v.sha256,
      checksumSource: v.source,
      cached: false,
      waitedForLock: lock.waited,
      requests: dl.requests,
      resumedFrom: dl.resumedFrom,
    };
  } catch (e) {
    // An abort surfaces as the caller's reason, wherever it struck (download, hashing, rename).
    if (o.signal?.aborted) throw o.signal.reason ?? e;
    throw e;
  } finally {
    await lock.release();
    await tidy();
  }
}
