/**
 * The compiled-model cache: a graph compiled to ONNX, and ONNX Runtime's optimized form of it, kept on disk under
 * `<EFFNET_CACHE>/compiled/<key>/` so that the next load of the same model skips compilation and graph optimization.
 * The key hashes everything the files depend on: the weights' bytes, the graph, the compile options, the runtime's
 * version and (for the optimized model, which is specific to the machine's kernels) the device and CPU. Files are
 * written atomically (temporary file + rename) with their sha256 in `meta.json`; an entry whose files do not match
 * their recorded hashes (a crash, a disk error, an edit) is deleted and rebuilt.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { commitFile, type Graph, resolveCacheDir, type TensorMap, writeFileAtomic } from '@effnet/core';
import type { CompileOptions } from './compile.js';

/** Bumped when the compiler's output for the same inputs changes. */
export const COMPILED_CACHE_FORMAT = 'effnet-compiled@2';

export interface CompiledCacheEntry {
  dir: string;
  key: string;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const CHUNK = 1 << 20;

/**
 * A file's bytes and their sha256. Every megabyte's read is issued at once (libuv's pool runs them) and each is hashed
 * as it arrives, so reading overlaps hashing and whatever else the main thread is doing (loading libvips, say): for a
 * 21 MB model, 90 ms here when the main thread is free, against 140 ms for a read and then a hash, and 55 ms after the
 * main thread comes back from 150 ms of other work. undefined when the file cannot be read or is not `size` bytes.
 */
async function readHashed(path: string, size: number): Promise<{ bytes: Uint8Array; sha256: string } | undefined> {
  const f = await open(path, 'r').catch(() => undefined);
  if (!f) return undefined;
  try {
    if ((await f.stat()).size !== size) return undefined;
    const bytes = Buffer.allocUnsafe(size);
    const reads: Promise<number>[] = [];
    for (let at = 0; at < size; at += CHUNK)
      reads.push(f.read(bytes, at, Math.min(CHUNK, size - at), at).then((r) => r.bytesRead, () => -1));
    const h = createHash('sha256');
    let ok = true;
    for (let i = 0; i < reads.length; i++) {
      const want = Math.min(CHUNK, size - i * CHUNK);
      // Every read is awaited, even after a failed one, so that none is still writing into `bytes` when this returns.
      const bytesRead = await reads[i]!;
      if (bytesRead !== want) ok = false;
      else if (ok) h.update(bytes.subarray(i * CHUNK, i * CHUNK + want));
    }
    return ok ? { bytes, sha256: h.digest('hex') } : undefined;
  } finally {
    await f.close();
  }
}

/** The cache key of a compilation: weights (names, dtypes, shapes, bytes), graph, options, runtime version. */
export function compiledCacheKey(graph: Graph, weights: TensorMap, options: CompileOptions, runtimeVersion: string): string {
  const h = createHash('sha256');
  const { extend: _extend, ...compileOptions } = options;
  h.update(JSON.stringify({ format: COMPILED_CACHE_FORMAT, runtimeVersion, graph, options: compileOptions }));
  for (const name of [...weights.keys()].sort()) {
    const t = weights.get(name)!;
    h.update(`\n${name}:${t.dtype}:${t.shape.join('x')}:`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex').slice(0, 32);
}

const EDGE = 1 << 16;

/**
 * The cache key of an ONNX file run as it is (only ONNX Runtime's optimized model is kept for it): its length, first
 * and last 64 KB (graph structure, and metadata_props, where an effnet export's card with its creation time sits),
 * not all of its bytes: hashing a large model's weights would cost what the cache saves. A file given by path is not
 * read beyond those two ends.
 */
export async function onnxFileCacheKey(model: { bytes?: Uint8Array; path?: string }, runtimeVersion: string): Promise<string> {
  let size: number;
  let head: Uint8Array;
  let tail: Uint8Array;
  if (model.bytes) {
    size = model.bytes.length;
    head = model.bytes.subarray(0, EDGE);
    tail = model.bytes.subarray(Math.max(0, size - EDGE));
  } else {
    const f = await open(model.path!, 'r');
    try {
      size = (await f.stat()).size;
      head = new Uint8Array(Math.min(EDGE, size));
      tail = new Uint8Array(Math.min(EDGE, size));
      await f.read(head, 0, head.length, 0);
      await f.read(tail, 0, tail.length, size - tail.length);
    } finally {
      await f.close();
    }
  }
  return createHash('sha256').update(`${COMPILED_CACHE_FORMAT}:onnx-file:${runtimeVersion}:${size}:`).update(head).update(tail).digest('hex').slice(0, 32);
}

/**
 * What the optimized model depends on beyond the compiled one: the provider and the CPU's kernels. It is kept in ONNX
 * Runtime's own format (.ort), which a session reads in place: no protobuf parse, no copy of the weights.
 */
export function optimizedModelName(device: string): string {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  return `optimized-${device}-${createHash('sha256').update(`${process.arch}:${cpu}`).digest('hex').slice(0, 12)}.ort`;
}

interface Meta {
  format: string;
  key: string;
  files: Record<string, { sha256: string; bytes: number }>;
}

export class CompiledModelCache {
  constructor(readonly root: string) {}

  /** The cache under `cacheDir` (default EFFNET_CACHE, ...), in its `compiled/` directory. */
  static at(cacheDir?: string): CompiledModelCache {
    return new CompiledModelCache(join(resolveCacheDir(cacheDir), 'compiled'));
  }

  entry(key: string): CompiledCacheEntry {
    return { key, dir: join(this.root, key) };
  }

  private async meta(e: CompiledCacheEntry): Promise<Meta | undefined> {
    try {
      const m = JSON.parse(await readFile(join(e.dir, 'meta.json'), 'utf8')) as Meta;
      return m.format === COMPILED_CACHE_FORMAT && m.key === e.key && typeof m.files === 'object' ? m : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A file of the entry if it is there and matches its recorded hash, else undefined (build it and write it again).
   * A file that does not match is removed with its record; an unreadable meta.json makes the whole entry stale.
   */
  async read(e: CompiledCacheEntry, file: string): Promise<Uint8Array | undefined> {
    const meta = await this.meta(e);
    if (!meta) {
      await this.evict(e);
      return undefined;
    }
    const rec = meta.files[file];
    if (!rec) return undefined;
    const got = await readHashed(join(e.dir, file), rec.bytes).catch(() => undefined);
    if (got && got.sha256 === rec.sha256) return got.bytes;
    await this.remove(e, file);
    return undefined;
  }

  /** Removes a file of the entry and its record. */
  async remove(e: CompiledCacheEntry, file: string): Promise<void> {
    const meta = await this.meta(e);
    if (meta?.files[file]) {
      delete meta.files[file];
      await this.writeMeta(e, meta);
    }
    await rm(join(e.dir, file), { force: true });
  }

  /** Writes a file of the entry atomically and records its hash (meta.json is itself replaced atomically). */
  async write(e: CompiledCacheEntry, file: string, bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(join(e.dir, file), bytes, { mkdir: true, sync: false });
    await this.record(e, file, bytes);
  }

  /** A file already written in the entry's directory under a temporary name: renamed into place and recorded. */
  async adopt(e: CompiledCacheEntry, tmp: string, file: string): Promise<Uint8Array> {
    const bytes = await readFile(tmp);
    await commitFile(tmp, join(e.dir, file), { sync: false });
    await this.record(e, file, bytes);
    return bytes;
  }

  /** A temporary path inside the entry's directory (same file system as the final name, for an atomic rename). */
  async tempPath(e: CompiledCacheEntry, file: string): Promise<string> {
    await mkdir(e.dir, { recursive: true });
    return join(e.dir, `.${file}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  }

  private async record(e: CompiledCacheEntry, file: string, bytes: Uint8Array): Promise<void> {
    const meta = (await this.meta(e)) ?? { format: COMPILED_CACHE_FORMAT, key: e.key, files: {} };
    meta.files[file] = { sha256: sha256(bytes), bytes: bytes.length };
    await this.writeMeta(e, meta);
  }

  private async writeMeta(e: CompiledCacheEntry, meta: Meta): Promise<void> {
    await writeFileAtomic(join(e.dir, 'meta.json'), new TextEncoder().encode(JSON.stringify(meta, null, 2) + '\n'), { sync: false });
  }

  async evict(e: CompiledCacheEntry): Promise<void> {
    await rm(e.dir, { recursive: true, force: true });
  }
}
