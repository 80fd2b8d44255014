/**
 * A read-only zip archive reader for what `torch.save` writes (see pth.ts for why effnet has its own): the central
 * directory (with ZIP64 end records and extra fields, which PyTorch's writer emits for large archives), STORED entries
 * (torch.save's only method) as views on the file, and DEFLATE entries (an archive re-zipped by another tool) through
 * node:zlib, loaded on first use.
 *
 * Every offset and size read from the archive is checked against the file's length before it is used, so a corrupt
 * or hostile archive is a TensorFileError, never an out-of-bounds read or an allocation larger than the archive can
 * justify (a DEFLATE entry may expand at most by deflate's own limit, 1032:1).
 */
import { TensorFileError } from '../errors.js';

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** The most a deflate stream can expand (RFC 1951: a 258-byte match in 2 bits, plus block overhead). */
const DEFLATE_MAX_RATIO = 1032;

export const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04] as const;

/** One file of the archive. Offsets and sizes are checked to lie inside the archive. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate (others are refused when read). */
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header. */
  localOffset: number;
}

/** An archive's directory: entries by name, in central-directory order. */
export interface ZipDirectory {
  entries: Map<string, ZipEntry>;
}

/** Whether bytes start like a zip archive (a local file header). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && ZIP_MAGIC.every((b, i) => bytes[i] === b);
}

type Fail = (reason: string) => never;

/** Reads the central directory. Duplicate names are refused (readers disagree on which copy wins). */
export function readZipDirectory(bytes: Uint8Array, fail: Fail): ZipDirectory {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number, what: string): number => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`zip ${what} ${v} is larger than any file; the archive is corrupt`);
    return Number(v);
  };

  // End of central directory: the last signature whose comment ends inside the file.
  let eocd = -1;
  for (let at = len - EOCD_SIZE; at >= 0 && at >= len - EOCD_SIZE - MAX_COMMENT; at--) {
    if (u32(at) === EOCD_SIGNATURE && at + EOCD_SIZE + u16(at + 20) <= len) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) fail('zip archive has no end-of-central-directory record; the file is truncated or not a zip archive');

  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  const locator = eocd - 20;
  if (locator >= 0 && u32(locator) === ZIP64_LOCATOR_SIGNATURE) {
    const at = u64(locator + 8, 'ZIP64 end record offset');
    if (at + 56 > locator) fail(`zip ZIP64 end record at ${at} lies outside the archive; the archive is corrupt`);
    if (u32(at) !== ZIP64_EOCD_SIGNATURE) fail(`zip ZIP64 end record at ${at} has a wrong signature; the archive is corrupt`);
    count = u64(at + 32, 'entry count');
    cdSize = u64(at + 40, 'central directory size');
    cdOffset = u64(at + 48, 'central directory offset');
  } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    fail('zip archive needs ZIP64 records but has none; the archive is corrupt');
  }
  const cdEnd = cdOffset + cdSize;
  if (cdEnd > eocd) fail(`zip central directory [${cdOffset}, ${cdEnd}) runs past its end record at ${eocd}; the archive is truncated or corrupt`);
  if (count > cdSize / CENTRAL_SIZE) fail(`zip archive declares ${count} entries, more than its ${cdSize}-byte central directory can hold`);

  const entries = new Map<string, ZipEntry>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + CENTRAL_SIZE > cdEnd || u32(p) !== CENTRAL_SIGNATURE) fail(`zip central directory entry ${k} at ${p} is missing or corrupt`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    let compressedSize = u32(p + 20);
    let size = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let localOffset = u32(p + 42);
    const next = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (next > cdEnd) fail(`zip central directory entry ${k} runs past the directory's end`);
    const nameBytes = bytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen);
    const name = (flags & 0x800 ? utf8 : latin1).decode(nameBytes);
    // ZIP64 extra field: the 64-bit values of the fields set to 0xffffffff, in this order.
    let x = p + CENTRAL_SIZE + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = u16(x);
      const n = u16(x + 2);
      if (x + 4 + n > xEnd) fail(`zip entry "${name}": extra field runs past its end`);
      if (id === 0x0001) {
        let q = x + 4;
        const take = (what: string): number => {
          if (q + 8 > x + 4 + n) fail(`zip entry "${name}": ZIP64 extra field is too short for its ${what}`);
          const v = u64(q, `${what} of "${name}"`);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take('size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localOffset === 0xffffffff) localOffset = take('offset');
      }
      x += 4 + n;
    }
    if (localOffset + LOCAL_SIZE > len) fail(`zip entry "${name}": local header at ${localOffset} lies outside the archive`);
    if (entries.has(name)) fail(`zip archive has two entries named "${name}"; the archive is corrupt or was tampered with`);
    entries.set(name, { name, method, flags, compressedSize, size, localOffset });
    p = next;
  }
  return { entries };
}

let zlib: typeof import('node:zlib') | undefined;

/** Loads node:zlib for DEFLATE entries (readPth calls this; synchronous parsing finds it through process.getBuiltinModule). */
export async function loadInflate(): Promise<void> {
  zlib ??= await import('node:zlib');
}

function inflater(): typeof import('node:zlib') | undefined {
  if (!zlib) {
    const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
    zlib = get?.('node:zlib') as typeof import('node:zlib') | undefined;
  }
  return zlib;
}

/**
 * An entry's bytes: a view on the archive for STORED entries (no copy), a fresh buffer for DEFLATE ones.
 * Encrypted entries and other methods are refused.
 */
export function zipEntryBytes(bytes: Uint8Array, e: ZipEntry, fail: Fail): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(e.localOffset, true) !== LOCAL_SIGNATURE) fail(`zip entry "${e.name}": no local header at ${e.localOffset}; the archive is corrupt`);
  const start = e.localOffset + LOCAL_SIZE + view.getUint16(e.localOffset + 26, true) + view.getUint16(e.localOffset + 28, true);
  if (start + e.compressedSize > bytes.length) {
    fail(`zip entry "${e.name}": its ${e.compressedSize} bytes at ${start} run past the end of the ${bytes.length}-byte archive; the file is truncated`);
  }
  if (e.flags & 1) fail(`zip entry "${e.name}" is encrypted; effnet reads unencrypted archives only`);
  const raw = bytes.subarray(start, start + e.compressedSize);
  if (e.method === 0) {
    if (e.size !== e.compressedSize) fail(`zip entry "${e.name}" is stored uncompressed but declares ${e.size} bytes for ${e.compressedSize} stored; the archive is corrupt`);
    return raw;
  }
  if (e.method !== 8) fail(`zip entry "${e.name}" uses compression method ${e.method}; effnet reads stored and deflated entries (re-save it with torch.save)`);
  if (e.size > DEFLATE_MAX_RATIO * e.compressedSize + 64) {
    fail(`zip entry "${e.name}" declares ${e.size} bytes from ${e.compressedSize} deflated ones, more than deflate can produce; the archive is corrupt`);
  }
  const z = inflater();
  if (!z) fail(`zip entry "${e.name}" is deflate-compressed and node:zlib is not available here; read the file with readPth, or re-save it with torch.save`);
  let out: Uint8Array;
  try {
    out = z.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
  } catch (err) {
    return fail(`zip entry "${e.name}" does not inflate (${(err as Error)?.message ?? String(err)}); the archive is corrupt`);
  }
  if (out.length !== e.size) fail(`zip entry "${e.name}" inflates to ${out.length} bytes but declares ${e.size}; the archive is corrupt`);
  return out;
}
