/**
 * safetensors reading and writing (https://github.com/huggingface/safetensors).
 *
 * Layout: an 8-byte little-endian u64 header size N, N bytes of UTF-8 JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`,
 * then the data buffer, which the tensors' byte ranges cover exactly, without holes or overlaps.
 *
 * Parsing never reads out of bounds and reports every malformed input as a {@link TensorFileError}
 * that names the file, the tensor and what would fix it. Parsing and serializing work on bytes and
 * need no Node API; only {@link readSafetensors} and {@link writeSafetensors} load `node:fs`.
 */
import { TensorFileError } from '../errors.js';
import type { DType, Tensor, TensorMap } from '../tensor.js';
import { checkTensorForWrite, describe, isShape, itemSize, safeNumel, typedArrayFromLE, typedArrayToLE } from './bytes.js';
import { readFileBytes, writeFileAtomic } from './files.js';

/** What a safetensors file holds. */
export interface SafetensorsContents {
  /** Tensors in data-offset order (for files written by {@link serializeSafetensors}: insertion order). */
  tensors: TensorMap;
  /** The `__metadata__` string map; empty when the file has none. */
  metadata: Record<string, string>;
}

/** Largest JSON header accepted, as in the reference implementation (100 MB). */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

/** safetensors dtype name -> DType. A Map, so that names like "constructor" are not found on a prototype. */
const FROM_ST = new Map<string, DType>([
  ['F32', 'float32'],
  ['F16', 'float16'],
  ['BF16', 'bfloat16'],
  ['F64', 'float64'],
  ['I64', 'int64'],
  ['I32', 'int32'],
  ['U8', 'uint8'],
]);

const TO_ST = new Map<DType, string>([...FROM_ST].map(([st, dt]) => [dt, st]));

/** Valid safetensors dtypes that have no DType here: they get a "convert it" message, not "unknown". */
const KNOWN_UNSUPPORTED_ST = new Set(['BOOL', 'I8', 'I16', 'U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

const SUPPORTED_ST_LIST = [...FROM_ST.keys()].join(', ');

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a safetensors file held in memory. Tensor data are copied into fresh, aligned typed arrays
 * (float16/bfloat16 as raw bits in a Uint16Array), so the input may be reused afterwards.
 *
 * @param bytes the whole file
 * @param file name used in error messages
 * @throws TensorFileError for any malformed input, naming the problem and the tensor
 */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsContents {
  const fail = (reason: string): never => {
    throw new TensorFileError(file, reason);
  };
  if (!(bytes instanceof Uint8Array)) return fail(`expected the file contents as a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length < 8) {
    return fail(
      `file is ${bytes.length} bytes, too short for the 8-byte header size that starts every safetensors file; ` +
        'the file is truncated or not safetensors',
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    return fail(
      `header size ${declared} is over the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit; ` +
        'the first 8 bytes must be the JSON header length (little-endian u64) — the file is corrupt or not safetensors',
    );
  }
  const headerLength = Number(declared);
  const dataStart = 8 + headerLength;
  if (dataStart > bytes.length) {
    return fail(
      `header size ${headerLength} runs past the end of the file (only ${bytes.length - 8} bytes follow the size field); ` +
        'the file is truncated or not safetensors',
    );
  }

  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    fail('header is not valid UTF-8; it must be a UTF-8 JSON object');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error)?.message ?? 'parse error'}); it must be a JSON object`);
  }
  if (!isPlainObject(header)) {
    return fail(`header must be a JSON object {name: {dtype, shape, data_offsets}}, got ${describe(header)}`);
  }

  const dataLength = bytes.length - dataStart;
  const entries: Entry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = parseMetadata(info, fail);
    else entries.push(parseEntry(name, info, dataLength, fail));
  }

  // The byte ranges must tile [0, dataLength): sorted by (begin, end), each starts where the last ended.
  const byRange = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: Entry | undefined;
  for (const e of byRange) {
    if (e.begin < cursor) {
      fail(
        `tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(previous?.name)} ` +
          `[${previous?.begin}, ${previous?.end}]; each byte of the data buffer must belong to exactly one tensor`,
      );
    }
    if (e.begin > cursor) {
      fail(
        `data bytes [${cursor}, ${e.begin}) belong to no tensor (hole before tensor ${JSON.stringify(e.name)}); ` +
          'the data buffer must be covered contiguously from offset 0',
      );
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataLength) {
    fail(
      `data bytes [${cursor}, ${dataLength}) at the end of the file belong to no tensor; ` +
        'the data buffer must be covered exactly (remove the trailing bytes or fix the offsets)',
    );
  }

  const tensors: TensorMap = new Map();
  // Stable sort by begin: file order, with header order among zero-size tensors at the same offset.
  for (const e of [...entries].sort((a, b) => a.begin - b.begin)) {
    const data = typedArrayFromLE(e.dtype, bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

function parseMetadata(info: unknown, fail: (reason: string) => never): Record<string, string> {
  if (info === null) return {};
  if (!isPlainObject(info)) return fail(`"${METADATA_KEY}" must be an object of string values, got ${describe(info)}`);
  for (const [k, v] of Object.entries(info)) {
    if (typeof v !== 'string') {
      fail(
        `"${METADATA_KEY}" entry ${JSON.stringify(k)} is ${describe(v)}, but metadata values must be strings ` +
          '(JSON-encode other values before writing)',
      );
    }
  }
  // fromEntries defines own properties, so a "__proto__" key stays data.
  return Object.fromEntries(Object.entries(info)) as Record<string, string>;
}

function parseEntry(name: string, info: unknown, dataLength: number, fail: (reason: string) => never): Entry {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(info)) return fail(`${where}: header entry must be an object {dtype, shape, data_offsets}, got ${describe(info)}`);
  const { dtype: st, shape, data_offsets: offsets } = info;
  if (typeof st !== 'string' || !FROM_ST.has(st)) {
    if (typeof st === 'string' && KNOWN_UNSUPPORTED_ST.has(st)) {
      return fail(`${where}: dtype ${st} is not supported here; convert the tensor to one of ${SUPPORTED_ST_LIST} before saving`);
    }
    return fail(`${where}: unknown dtype ${describe(st)} (supported: ${SUPPORTED_ST_LIST})`);
  }
  const dtype = FROM_ST.get(st)!;
  if (!isShape(shape)) return fail(`${where}: shape ${describe(shape)} must be an array of non-negative integers`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !Number.isSafeInteger(offsets[0]) ||
    !Number.isSafeInteger(offsets[1]) ||
    offsets[0] < 0 ||
    offsets[1] < 0
  ) {
    return fail(`${where}: data_offsets ${describe(offsets)} must be [begin, end], two non-negative integers`);
  }
  const begin = offsets[0] as number;
  const end = offsets[1] as number;
  if (end < begin) return fail(`${where}: data_offsets [${begin}, ${end}] end before they begin; end must be >= begin`);
  if (end > dataLength) {
    return fail(
      `${where}: data_offsets [${begin}, ${end}] run past the end of the data buffer (${dataLength} bytes); ` +
        'the file is truncated or the offsets are wrong',
    );
  }
  const n = safeNumel(shape);
  const need = n * itemSize(dtype);
  if (end - begin !== need) {
    const needText = Number.isFinite(need) ? `${need} bytes` : 'more bytes than any file holds';
    return fail(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but dtype ${st} with shape [${shape.join(', ')}] ` +
        `needs ${needText}; fix the shape or the offsets`,
    );
  }
  return { name, dtype, shape: [...shape], begin, end };
}

// ---------------------------------------------------------------------------------------------
// Serializing
// ---------------------------------------------------------------------------------------------

/**
 * Serializes tensors to safetensors bytes. Tensors are laid out contiguously in insertion order;
 * the JSON header is padded with spaces to a multiple of 8 bytes.
 *
 * @param tensors a TensorMap or a plain record of tensors
 * @param metadata optional string map, written as `__metadata__`
 * @throws TensorFileError if a tensor is malformed (dtype, shape, data kind or length), a name is
 *   `__metadata__`, or a metadata value is not a string
 */
export function serializeSafetensors(tensors: TensorMap | Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  return encodeSafetensors(tensors, metadata, '<buffer>');
}

function encodeSafetensors(
  tensors: TensorMap | Record<string, Tensor>,
  metadata: Record<string, string> | undefined,
  file: string,
): Uint8Array {
  const fail = (reason: string): never => {
    throw new TensorFileError(file, reason);
  };
  if (typeof tensors !== 'object' || tensors === null) return fail(`expected a TensorMap or a record of tensors, got ${describe(tensors)}`);
  const list: [unknown, unknown][] = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) return fail(`metadata must be an object of string values, got ${describe(metadata)}`);
    const fields: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') return fail(`metadata entry ${JSON.stringify(k)} is ${describe(v)}; metadata values must be strings`);
      fields.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }

  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, value] of list) {
    if (typeof name !== 'string') return fail(`tensor names must be strings, got ${describe(name)}`);
    if (name === METADATA_KEY) return fail(`"${METADATA_KEY}" is reserved for metadata and cannot name a tensor; rename it`);
    const t = checkTensorForWrite(file, `tensor ${JSON.stringify(name)}`, value);
    const bytes = typedArrayToLE(t.data);
    const st = TO_ST.get(t.dtype)!;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":${JSON.stringify(st)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`,
    );
    chunks.push(bytes);
    offset += bytes.length;
  }

  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > MAX_SAFETENSORS_HEADER_BYTES) {
    return fail(`header would be ${headerLength} bytes, over the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit readers accept; split the tensors over several files`);
  }
  let out: Uint8Array;
  try {
    out = new Uint8Array(8 + headerLength + offset);
  } catch {
    return fail(`${8 + headerLength + offset} bytes are too many for one buffer; split the tensors over several files`);
  }
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/**
 * Reads and parses a safetensors file.
 * @throws TensorFileError naming `path` if the file cannot be read or is malformed
 */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  return parseSafetensors(await readFileBytes(path), path);
}

/**
 * Writes tensors as a safetensors file, atomically: the bytes go to a temporary file in the same
 * directory, which is flushed and then renamed over `path`, so a crash never leaves half a file.
 * @throws TensorFileError naming `path` if a tensor is malformed or the file cannot be written
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorMap | Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata, path));
}
