/**
 * Byte-level helpers shared by the tensor file formats: element sizes, little-endian copies, shape checks,
 * error-message formatting, and whole-file reads and atomic writes. Only readFileBytes/writeFileAtomic load node:fs.
 */
import { TensorFileError } from '../errors.js';
import type { DType, Tensor, TensorData } from '../tensor.js';

const ITEM_SIZE = new Map<DType, number>([
  ['float32', 4],
  ['float64', 8],
  ['float16', 2],
  ['bfloat16', 2],
  ['int64', 8],
  ['int32', 4],
  ['uint8', 1],
]);

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes per element of a known DType. */
export function itemSize(dtype: DType): number {
  return ITEM_SIZE.get(dtype) ?? 1;
}

/** Whether a runtime value is one of the DType strings. */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && ITEM_SIZE.has(value as DType);
}

/** Reverses the byte order of each `size`-byte element of `bytes`, in place. */
export function swapBytesInPlace(bytes: Uint8Array, size: number): void {
  if (size <= 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * Copies little-endian element bytes into a fresh, aligned typed array of the dtype.
 * `src.length` must be a multiple of the item size (callers check it).
 */
export function typedArrayFromLE(dtype: DType, src: Uint8Array): TensorData {
  const buffer = new ArrayBuffer(src.length);
  new Uint8Array(buffer).set(src);
  return typedArrayOnLE(dtype, buffer);
}

/**
 * A typed array of the dtype over a whole buffer of little-endian element bytes, without copying
 * (on a big-endian host the bytes are swapped in place). `buffer.byteLength` must be a multiple of the item size.
 */
export function typedArrayOnLE(dtype: DType, buffer: ArrayBuffer): TensorData {
  if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(new Uint8Array(buffer), itemSize(dtype));
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer);
    case 'float64':
      return new Float64Array(buffer);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'uint8':
      return new Uint8Array(buffer);
  }
}

/** The element bytes of a typed array in little-endian order (a view on little-endian hosts). */
export function typedArrayToLE(data: TensorData): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_IS_LITTLE_ENDIAN) return view;
  const copy = view.slice();
  swapBytesInPlace(copy, data.BYTES_PER_ELEMENT);
  return copy;
}

function dataFitsDType(dtype: DType, data: unknown): data is TensorData {
  switch (dtype) {
    case 'float32':
      return data instanceof Float32Array;
    case 'float64':
      return data instanceof Float64Array;
    case 'float16':
    case 'bfloat16':
      return data instanceof Uint16Array;
    case 'int64':
      return data instanceof BigInt64Array;
    case 'int32':
      return data instanceof Int32Array;
    case 'uint8':
      return data instanceof Uint8Array;
  }
}

const EXPECTED_ARRAY: Record<DType, string> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  float16: 'Uint16Array (raw half bits)',
  bfloat16: 'Uint16Array (raw bfloat16 bits)',
  int64: 'BigInt64Array',
  int32: 'Int32Array',
  uint8: 'Uint8Array',
};

/**
 * Element count of a validated shape; Infinity when it exceeds Number.MAX_SAFE_INTEGER
 * (so that it never equals a real byte count).
 */
export function safeNumel(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return n;
}

/** Whether a value is an array of non-negative safe integers. */
export function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
}

/**
 * A short, bounded, never-throwing description of an arbitrary value for error messages
 * (JSON.stringify can throw on deep nesting, cycles and BigInt).
 */
export function describe(value: unknown, depth = 0): string {
  const limit = 60;
  let out: string;
  if (value === undefined) out = 'undefined';
  else if (typeof value === 'bigint') out = `${value}n`;
  else if (typeof value === 'number') out = String(value);
  else if (typeof value === 'string') out = JSON.stringify(value.length > limit ? `${value.slice(0, limit)}…` : value);
  else if (typeof value === 'boolean' || value === null) out = String(value);
  else if (typeof value === 'function' || typeof value === 'symbol') out = `a ${typeof value}`;
  else if (Array.isArray(value)) {
    if (depth >= 2) out = value.length ? '[…]' : '[]';
    else out = `[${value.slice(0, 8).map((v) => describe(v, depth + 1)).join(', ')}${value.length > 8 ? ', …' : ''}]`;
  } else if (ArrayBuffer.isView(value)) out = `a ${value.constructor.name}`;
  else {
    const keys = Object.keys(value as object);
    if (depth >= 2) out = keys.length ? '{…}' : '{}';
    else
      out = `{${keys
        .slice(0, 4)
        .map((k) => `${JSON.stringify(k)}: ${describe((value as Record<string, unknown>)[k], depth + 1)}`)
        .join(', ')}${keys.length > 4 ? ', …' : ''}}`;
  }
  return out.length > limit * 2 ? `${out.slice(0, limit * 2)}…` : out;
}

/**
 * Checks a tensor about to be written: known dtype, valid shape, typed array of the
 * dtype's kind holding exactly numel(shape) elements. `label` names it in the error ('tensor "x"').
 */
export function checkTensorForWrite(file: string, label: string, t: unknown): Tensor {
  const fail = (reason: string): never => {
    throw new TensorFileError(file, `${label}: ${reason}`);
  };
  if (typeof t !== 'object' || t === null) return fail(`expected a tensor {dtype, shape, data}, got ${describe(t)}`);
  const { dtype, shape, data } = t as Partial<Tensor>;
  if (!isDType(dtype)) return fail(`unknown dtype ${describe(dtype)} (expected one of ${[...ITEM_SIZE.keys()].join(', ')})`);
  if (!isShape(shape)) return fail(`shape ${describe(shape)} is not an array of non-negative integers`);
  if (!dataFitsDType(dtype, data)) {
    return fail(`dtype ${dtype} needs its data in a ${EXPECTED_ARRAY[dtype]}, got ${describe(data)}`);
  }
  const n = safeNumel(shape);
  if (data.length !== n) {
    return fail(`shape [${shape.join(', ')}] has ${n} elements but data holds ${data.length}; fix the shape or the data`);
  }
  return { dtype, shape, data };
}
