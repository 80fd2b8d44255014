/**
 * NumPy .npy reading and writing (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 *
 * Layout: magic `\x93NUMPY`, major and minor version bytes, a little-endian header length
 * (u16 for version 1.0, u32 for 2.0 and 3.0), the header — a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and ended by
 * '\n' (latin-1 for 1.0/2.0, UTF-8 for 3.0) — then the raw array data.
 *
 * The header is read by a small, strict literal parser (strings, ints, True/False/None, tuples,
 * lists, dicts; trailing commas and any spacing allowed), never by evaluation. Every malformed
 * input is reported as a {@link TensorFileError}.
 */
import { TensorFileError } from '../errors.js';
import type { DType, Tensor } from '../tensor.js';
import {
  checkTensorForWrite,
  describe,
  isShape,
  itemSize,
  safeNumel,
  typedArrayFromLE,
  typedArrayToLE,
} from './bytes.js';
import { readFileBytes, writeFileAtomic } from './files.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ARRAY_ALIGN = 64;
const MAX_NESTING = 32;

/** npy descr -> DType (little-endian, or byte-order-free for single bytes). */
const FROM_DESCR = new Map<string, DType>([
  ['<f4', 'float32'],
  ['<f8', 'float64'],
  ['<f2', 'float16'],
  ['<i8', 'int64'],
  ['<i4', 'int32'],
  ['|u1', 'uint8'],
  ['<u1', 'uint8'],
  ['>u1', 'uint8'],
  ['=u1', 'uint8'],
]);

const TO_DESCR = new Map<DType, string>([
  ['float32', '<f4'],
  ['float64', '<f8'],
  ['float16', '<f2'],
  ['int64', '<i8'],
  ['int32', '<i4'],
  ['uint8', '|u1'],
]);

const SUPPORTED_DESCR_LIST = [...TO_DESCR.values()].join(', ');

// ---------------------------------------------------------------------------------------------
// Python literal parser
// ---------------------------------------------------------------------------------------------

/** A Python tuple, kept apart from a list because numpy's shape must be a tuple. */
interface PyTuple {
  tuple: PyValue[];
}
/** A Python dict with string keys (other keys are rejected). */
interface PyDict {
  dict: Map<string, PyValue>;
}
type PyValue = string | number | boolean | null | PyValue[] | PyTuple | PyDict;

function isTuple(v: PyValue | undefined): v is PyTuple {
  return typeof v === 'object' && v !== null && 'tuple' in v;
}
function isDict(v: PyValue | undefined): v is PyDict {
  return typeof v === 'object' && v !== null && 'dict' in v;
}

class LiteralParser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly src: string,
    private readonly fail: (reason: string) => never,
  ) {}

  parseAll(): PyValue {
    const v = this.value();
    this.skipSpace();
    if (this.pos < this.src.length) this.error('unexpected text after the closing brace');
    return v;
  }

  private error(what: string): never {
    const from = Math.max(0, this.pos - 20);
    const snippet = this.src.slice(from, this.pos + 20);
    return this.fail(
      `header is not a Python dict literal like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }: ` +
        `${what} at character ${this.pos} (near ${JSON.stringify(snippet)})`,
    );
  }

  private skipSpace(): void {
    while (this.pos < this.src.length) {
      const c = this.src[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') this.pos++;
      else break;
    }
  }

  private peek(): string | undefined {
    this.skipSpace();
    return this.src[this.pos];
  }

  private value(): PyValue {
    const c = this.peek();
    if (c === undefined) return this.error('unexpected end of header');
    if (c === '{' || c === '(' || c === '[') {
      if (++this.depth > MAX_NESTING) this.error(`nesting deeper than ${MAX_NESTING} levels`);
      const v = c === '{' ? this.dict() : c === '(' ? this.paren() : this.list();
      this.depth--;
      return v;
    }
    if (c === "'" || c === '"') return this.string();
    if (c === '-' || c === '+' || (c >= '0' && c <= '9')) return this.integer();
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.pos, this.pos + 64))?.[0];
    if (word === 'True' || word === 'False' || word === 'None') {
      this.pos += word.length;
      return word === 'True' ? true : word === 'False' ? false : null;
    }
    return this.error(word ? `unexpected name ${JSON.stringify(word)}` : `unexpected character ${JSON.stringify(c)}`);
  }

  /** Items up to `close`, separated by commas, trailing comma allowed. Returns them and whether any comma was seen. */
  private items(close: string, item: () => void): boolean {
    let comma = false;
    for (;;) {
      if (this.peek() === close) break;
      item();
      const next = this.peek();
      if (next === ',') {
        this.pos++;
        comma = true;
      } else if (next !== close) {
        this.error(`expected ',' or '${close}'`);
      }
    }
    this.pos++;
    return comma;
  }

  private dict(): PyDict {
    this.pos++;
    const dict = new Map<string, PyValue>();
    this.items('}', () => {
      const keyAt = this.pos;
      const key = this.value();
      if (typeof key !== 'string') {
        this.pos = keyAt;
        this.error('dict keys must be strings');
      }
      if (dict.has(key)) this.error(`key ${JSON.stringify(key)} appears twice`);
      if (this.peek() !== ':') this.error("expected ':'");
      this.pos++;
      dict.set(key, this.value());
    });
    return { dict };
  }

  /** `()` and `(x,)` and `(x, y)` are tuples; `(x)` is just x, as in Python. */
  private paren(): PyValue {
    this.pos++;
    const items: PyValue[] = [];
    const comma = this.items(')', () => items.push(this.value()));
    if (items.length === 1 && !comma) return items[0]!;
    return { tuple: items };
  }

  private list(): PyValue[] {
    this.pos++;
    const items: PyValue[] = [];
    this.items(']', () => items.push(this.value()));
    return items;
  }

  private string(): string {
    const quote = this.src[this.pos];
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined || c === '\n') return this.error('unterminated string');
      this.pos++;
      if (c === quote) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.src[this.pos];
      this.pos++;
      const simple: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r', '0': '\0' };
      if (e !== undefined && Object.hasOwn(simple, e)) out += simple[e];
      else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(this.src.slice(this.pos, this.pos + 2))) {
        out += String.fromCharCode(parseInt(this.src.slice(this.pos, this.pos + 2), 16));
        this.pos += 2;
      } else {
        this.pos--;
        this.error('unsupported escape in string');
      }
    }
  }

  private integer(): number {
    const m = /^[-+]?[0-9]+[lL]?/.exec(this.src.slice(this.pos, this.pos + 400));
    const text = m?.[0];
    if (!text) return this.error('expected an integer');
    const after = this.src[this.pos + text.length];
    if (after !== undefined && /[0-9.eExXjJ_]/.test(after)) this.error('only plain integers are allowed');
    this.pos += text.length;
    // `+ 0` turns Python's -0 (which is just 0) into +0, so shapes compare equal whatever the sign written.
    return Number(text.replace(/[lL]$/, '')) + 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/**
 * Parses a .npy file held in memory (format versions 1.0, 2.0 and 3.0; C order; little-endian
 * float32, float64, float16, int64, int32 and uint8). Data are copied into a fresh, aligned typed
 * array (float16 as raw bits in a Uint16Array).
 *
 * @param bytes the whole file
 * @param file name used in error messages
 * @throws TensorFileError for any malformed or unsupported input, saying what would fix it
 */
export function parseNpy(bytes: Uint8Array, file = '<buffer>'): Tensor {
  const fail = (reason: string): never => {
    throw new TensorFileError(file, reason);
  };
  if (!(bytes instanceof Uint8Array)) return fail(`expected the file contents as a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    return fail('not an npy file: it does not start with the magic bytes \\x93NUMPY followed by a version and header length');
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (minor !== 0 || major < 1 || major > 3) {
    return fail(`npy format version ${major}.${minor} is not supported (supported: 1.0, 2.0, 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = 10;
    headerLength = view.getUint16(8, true);
  } else {
    if (bytes.length < 12) return fail(`file is ${bytes.length} bytes, too short for a version ${major}.0 preamble (12 bytes); it is truncated`);
    headerStart = 12;
    headerLength = view.getUint32(8, true);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) {
    return fail(`header length ${headerLength} runs past the end of the file (${bytes.length - headerStart} bytes follow); the file is truncated`);
  }

  const raw = bytes.subarray(headerStart, dataStart);
  let text = '';
  if (major === 3) {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
    } catch {
      fail('version 3.0 header is not valid UTF-8');
    }
  } else {
    text = latin1(raw);
  }

  const header = new LiteralParser(text, fail).parseAll();
  if (!isDict(header)) return fail(`header must be a dict {'descr': ..., 'fortran_order': ..., 'shape': ...}, got ${describe(header)}`);
  const keys = [...header.dict.keys()].sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') {
    return fail(`header keys must be exactly 'descr', 'fortran_order' and 'shape', got ${keys.map((k) => `'${k}'`).join(', ') || 'none'}`);
  }
  const descr = header.dict.get('descr');
  const fortranOrder = header.dict.get('fortran_order');
  const shapeValue = header.dict.get('shape');

  if (typeof descr !== 'string') {
    return fail(`descr ${describe(descr)} is a structured or unknown dtype; only plain numeric arrays (${SUPPORTED_DESCR_LIST}) are supported`);
  }
  const dtype = FROM_DESCR.get(descr);
  if (dtype === undefined) {
    if (descr.startsWith('>') && FROM_DESCR.has(`<${descr.slice(1)}`)) {
      return fail(
        `descr ${JSON.stringify(descr)} is big-endian; only little-endian data is supported — ` +
          "save arr.astype(arr.dtype.newbyteorder('<')) instead",
      );
    }
    return fail(`descr ${JSON.stringify(descr)} is not supported (supported: ${SUPPORTED_DESCR_LIST}); convert the array with arr.astype(...) before saving`);
  }
  if (typeof fortranOrder !== 'boolean') return fail(`fortran_order must be True or False, got ${describe(fortranOrder)}`);
  if (fortranOrder) {
    return fail('fortran_order is True, but only C-ordered arrays are supported; save np.ascontiguousarray(arr) instead');
  }
  if (!isTuple(shapeValue)) return fail(`shape must be a tuple of non-negative integers such as (2, 3), (3,) or (), got ${describe(shapeValue)}`);
  const shape = shapeValue.tuple;
  if (!isShape(shape)) return fail(`shape must be a tuple of non-negative integers, got ${describe(shape)}`);

  const need = safeNumel(shape) * itemSize(dtype);
  const have = bytes.length - dataStart;
  if (have !== need) {
    const needText = Number.isFinite(need) ? `${need} bytes` : 'more bytes than any file holds';
    const what = `shape (${shape.join(', ')}) of ${descr} needs ${needText} of data but the file has ${have}`;
    return fail(have < need ? `${what}; the file is truncated` : `${what}; remove the ${have - need} trailing bytes (an npy file holds exactly one array)`);
  }
  return { dtype, shape: [...shape], data: typedArrayFromLE(dtype, bytes.subarray(dataStart)) };
}

// ---------------------------------------------------------------------------------------------
// Serializing
// ---------------------------------------------------------------------------------------------

/**
 * Serializes a tensor as a .npy file, format version 1.0 (2.0 if the header would not fit),
 * with the header padded by spaces and '\n' so the data start at a multiple of 64 bytes, as numpy does.
 *
 * @throws TensorFileError if the tensor is malformed or its dtype (bfloat16) has no npy equivalent
 */
export function serializeNpy(t: Tensor): Uint8Array {
  return encodeNpy(t, '<buffer>');
}

function encodeNpy(t: Tensor, file: string): Uint8Array {
  const tensor = checkTensorForWrite(file, 'tensor', t);
  const descr = TO_DESCR.get(tensor.dtype);
  if (descr === undefined) {
    throw new TensorFileError(file, `dtype ${tensor.dtype} has no npy equivalent; convert it to float32 first (toFloat32)`);
  }
  const { shape } = tensor;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let preamble = 10;
  let padding = ARRAY_ALIGN - ((preamble + dict.length + 1) % ARRAY_ALIGN);
  if (dict.length + 1 + padding > 0xffff) {
    version = 2;
    preamble = 12;
    padding = ARRAY_ALIGN - ((preamble + dict.length + 1) % ARRAY_ALIGN);
  }
  const headerLength = dict.length + padding + 1;
  const data = typedArrayToLE(tensor.data);
  let out: Uint8Array;
  try {
    out = new Uint8Array(preamble + headerLength + data.length);
  } catch {
    throw new TensorFileError(file, `${preamble + headerLength + data.length} bytes are too many for one buffer`);
  }
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  for (let i = 0; i < dict.length; i++) out[preamble + i] = dict.charCodeAt(i);
  out.fill(0x20, preamble + dict.length, preamble + headerLength - 1);
  out[preamble + headerLength - 1] = 0x0a;
  out.set(data, preamble + headerLength);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/**
 * Reads and parses a .npy file.
 * @throws TensorFileError naming `path` if the file cannot be read or is malformed
 */
export async function readNpy(path: string): Promise<Tensor> {
  return parseNpy(await readFileBytes(path), path);
}

/**
 * Writes a tensor as a .npy file, atomically (temporary file in the same directory, flushed, then
 * renamed over `path`), so a crash never leaves half a file.
 * @throws TensorFileError naming `path` if the tensor is malformed or the file cannot be written
 */
export async function writeNpy(path: string, t: Tensor): Promise<void> {
  await writeFileAtomic(path, encodeNpy(t, path));
}
