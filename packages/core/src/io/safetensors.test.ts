import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { TensorFileError } from '../errors.js';
import { OutputFileError } from './files.js';
import type { DType, Tensor, TensorData, TensorMap } from '../tensor.js';
import { numel } from '../tensor.js';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from './safetensors.js';
import { mutate, mutationArb } from '../../test/mutations.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const DTYPES: DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8'];
const SIZE: Record<DType, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, uint8: 1 };
const ST_NAMES = ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'U8'];

/** A typed array of the dtype over a copy of `bytes`, optionally as a view at an offset in a larger buffer. */
function fromBytes(dtype: DType, bytes: Uint8Array, leadingElements = 0): TensorData {
  const size = SIZE[dtype];
  const buffer = new ArrayBuffer(bytes.length + leadingElements * size);
  new Uint8Array(buffer).set(bytes, leadingElements * size);
  const off = leadingElements * size;
  const n = bytes.length / size;
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer, off, n);
    case 'float64':
      return new Float64Array(buffer, off, n);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buffer, off, n);
    case 'int64':
      return new BigInt64Array(buffer, off, n);
    case 'int32':
      return new Int32Array(buffer, off, n);
    case 'uint8':
      return new Uint8Array(buffer, off, n);
  }
}

const rawBytes = (d: TensorData): Uint8Array => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.nat({ max: 4 }), { maxLength: 4 }),
    lead: fc.nat({ max: 2 }),
  })
  .chain(({ dtype, shape, lead }) => {
    const n = numel(shape) * SIZE[dtype];
    return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes) => ({ dtype, shape, data: fromBytes(dtype, bytes, lead) }));
  });

/** Names that keep their order through a JSON object: no canonical array indices ("0", "17"). */
const nameArb = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 10 }),
    fc.string({ maxLength: 6 }),
    fc.constantFrom('__proto__', 'constructor', 'toString', 'a"b', 'back\\slash', '\u0000', '\ud800', 'é.weight', 'layer.0.weight'),
  )
  .filter((s) => s !== '__metadata__' && !/^(0|[1-9][0-9]*)$/.test(s));

const tensorsArb = fc.uniqueArray(fc.tuple(nameArb, tensorArb), { selector: ([name]) => name, maxLength: 6 });
const metadataArb = fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 4 }), { nil: undefined });

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const u64le = (n: number): number[] => Array.from({ length: 8 }, (_, i) => Math.floor(n / 2 ** (8 * i)) % 256);

/** A file from a header value (JSON-encoded here, padded to 8) and data bytes. */
function build(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  while (json.length % 8) json += ' ';
  const h = new TextEncoder().encode(json);
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  return new Uint8Array([...u64le(h.length), ...h, ...d]);
}

function expectFileError(f: () => unknown, pattern: RegExp): TensorFileError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TensorFileError);
    expect((e as Error).message).toMatch(pattern);
    return e as TensorFileError;
  }
  throw new Error(`expected a TensorFileError matching ${pattern}, but it parsed`);
}

/** Fuzz oracle: parse returns a consistent result or throws TensorFileError; anything else fails the property. */
function parsesOrRejects(bytes: Uint8Array): void {
  let out: ReturnType<typeof parseSafetensors>;
  try {
    out = parseSafetensors(bytes, 'fuzz.safetensors');
  } catch (e) {
    if (e instanceof TensorFileError) {
      expect(e.message.startsWith('fuzz.safetensors: ')).toBe(true);
      return;
    }
    throw e;
  }
  let total = 0;
  for (const t of out.tensors.values()) {
    expect(DTYPES).toContain(t.dtype);
    expect(t.data.length).toBe(numel(t.shape));
    expect(t.data.BYTES_PER_ELEMENT).toBe(SIZE[t.dtype]);
    total += t.data.byteLength;
  }
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  expect(total).toBe(bytes.length - 8 - headerLength);
  for (const v of Object.values(out.metadata)) expect(typeof v).toBe('string');
}

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

describe('safetensors round trip', () => {
  test.prop([tensorsArb, metadataArb], { numRuns: 500 })('serialize -> parse is identical, bit for bit', (entries, metadata) => {
    const input: TensorMap = new Map(entries);
    const bytes = serializeSafetensors(input, metadata);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    expect(bytes[8]).toBe(0x7b); // '{'

    const { tensors, metadata: meta } = parseSafetensors(bytes);
    expect([...tensors.keys()]).toEqual([...input.keys()]);
    for (const [name, t] of input) {
      const back = tensors.get(name)!;
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(back.data.constructor).toBe(t.data.constructor);
      expect(rawBytes(back.data)).toEqual(rawBytes(t.data));
    }
    expect(meta).toEqual(metadata ?? {});
    // Serializing what was parsed gives the same bytes again.
    expect(serializeSafetensors(tensors, metadata)).toEqual(bytes);
  });

  test('a plain record works like a Map, and NaN payloads survive', () => {
    const f32 = new Float32Array(new Uint32Array([0x7f800001, 0xffc00123, 0x7fc00000, 0x80000000]).buffer);
    const f64 = new Float64Array(new BigUint64Array([0x7ff0000000000001n, 0xfff8000000abcdefn]).buffer);
    const f16 = new Uint16Array([0x7c01, 0xfe00, 0x8000]);
    const bytes = serializeSafetensors({
      a: { dtype: 'float32', shape: [2, 2], data: f32 },
      b: { dtype: 'float64', shape: [2], data: f64 },
      c: { dtype: 'bfloat16', shape: [3], data: f16 },
    });
    const { tensors } = parseSafetensors(bytes);
    expect(new Uint32Array(tensors.get('a')!.data.buffer)).toEqual(new Uint32Array([0x7f800001, 0xffc00123, 0x7fc00000, 0x80000000]));
    expect(new BigUint64Array(tensors.get('b')!.data.buffer)).toEqual(new BigUint64Array([0x7ff0000000000001n, 0xfff8000000abcdefn]));
    expect(tensors.get('c')!.data).toEqual(f16);
  });

  test('integer-like names keep their order when the data are in that order', () => {
    const t = (v: number): Tensor => ({ dtype: 'uint8', shape: [1], data: new Uint8Array([v]) });
    const { tensors } = parseSafetensors(serializeSafetensors(new Map([['b', t(1)], ['10', t(2)], ['2', t(3)]])));
    expect([...tensors.keys()]).toEqual(['b', '10', '2']);
  });

  test('an empty map is a valid 16-byte file', () => {
    const bytes = serializeSafetensors(new Map());
    expect([...bytes]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...ascii('{}      ')]);
    expect(parseSafetensors(bytes)).toEqual({ tensors: new Map(), metadata: {} });
  });
});

// ---------------------------------------------------------------------------------------------
// Known bytes
// ---------------------------------------------------------------------------------------------

describe('safetensors known bytes', () => {
  const json = '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}';
  // 139 bytes of JSON, padded with 5 spaces to 144.
  const file = new Uint8Array([
    144, 0, 0, 0, 0, 0, 0, 0,
    ...ascii(json), 0x20, 0x20, 0x20, 0x20, 0x20,
    0x00, 0x00, 0x80, 0x3f, // 1.0f
    0x00, 0x00, 0x20, 0xc0, // -2.5f
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // -1n
  ]);

  test('parses a hand-built file', () => {
    expect(json.length).toBe(139);
    const { tensors, metadata } = parseSafetensors(file);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toEqual(['w', 'i']);
    expect(tensors.get('w')).toEqual({ dtype: 'float32', shape: [2], data: new Float32Array([1, -2.5]) });
    expect(tensors.get('i')).toEqual({ dtype: 'int64', shape: [1], data: new BigInt64Array([-1n]) });
  });

  test('serializes to exactly those bytes', () => {
    const tensors: TensorMap = new Map([
      ['w', { dtype: 'float32', shape: [2], data: new Float32Array([1, -2.5]) }],
      ['i', { dtype: 'int64', shape: [1], data: new BigInt64Array([-1n]) }],
    ]);
    expect(serializeSafetensors(tensors, { format: 'pt' })).toEqual(file);
  });

  test('unaligned offsets, out-of-order ranges and a view into a larger buffer all read correctly', () => {
    // h: F16 [1] at [0,2]; f: F32 [1] at [2,6] (unaligned); z: F32 [0] at [6,6]; listed out of data order.
    const bytes = build(
      {
        f: { dtype: 'F32', shape: [1], data_offsets: [2, 6] },
        z: { dtype: 'F32', shape: [0], data_offsets: [6, 6] },
        h: { dtype: 'F16', shape: [], data_offsets: [0, 2] },
      },
      new Uint8Array([0x00, 0x3c, 0x00, 0x00, 0xc0, 0x3f]),
    );
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    const { tensors } = parseSafetensors(padded.subarray(3));
    expect([...tensors.keys()]).toEqual(['h', 'f', 'z']);
    expect(tensors.get('h')).toEqual({ dtype: 'float16', shape: [], data: new Uint16Array([0x3c00]) });
    expect(tensors.get('f')).toEqual({ dtype: 'float32', shape: [1], data: new Float32Array([1.5]) });
    expect(tensors.get('z')!.data).toEqual(new Float32Array(0));
    expect(tensors.get('f')!.data.byteOffset % 4).toBe(0);
  });

  test('every supported dtype name maps to its DType', () => {
    const header: Record<string, unknown> = {};
    let off = 0;
    for (const [i, st] of ST_NAMES.entries()) {
      const size = SIZE[DTYPES[i]!];
      header[st] = { dtype: st, shape: [1], data_offsets: [off, off + size] };
      off += size;
    }
    const { tensors } = parseSafetensors(build(header, off));
    expect(ST_NAMES.map((st) => tensors.get(st)!.dtype)).toEqual(DTYPES);
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

describe('safetensors malformed input', () => {
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const entry = (e: Record<string, unknown>): Uint8Array => build({ t: { ...ok, ...e } }, 8);

  test('file shorter than the size field', () => {
    const e = expectFileError(() => parseSafetensors(new Uint8Array(5), 'x.safetensors'), /x\.safetensors: file is 5 bytes, too short/);
    expect(e.file).toBe('x.safetensors');
  });
  test('header size over 100 MB', () => {
    expectFileError(() => parseSafetensors(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1, 0x7b])), /over the 100000000-byte limit/);
    expectFileError(() => parseSafetensors(new Uint8Array([0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0])), /over the 100000000-byte limit/);
  });
  test('header size beyond the file', () => {
    expectFileError(() => parseSafetensors(new Uint8Array([20, 0, 0, 0, 0, 0, 0, 0, ...ascii('{}')])), /runs past the end of the file.*truncated/);
  });
  test('header not UTF-8, not JSON, not an object', () => {
    expectFileError(() => parseSafetensors(new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0x28])), /not valid UTF-8/);
    expectFileError(() => parseSafetensors(build('{"t": ')), /not valid JSON/);
    expectFileError(() => parseSafetensors(build('')), /not valid JSON/);
    expectFileError(() => parseSafetensors(build([1, 2])), /must be a JSON object/);
    expectFileError(() => parseSafetensors(build(null)), /must be a JSON object/);
    expectFileError(() => parseSafetensors(build('"str"')), /must be a JSON object/);
  });
  test('entry not an object', () => {
    expectFileError(() => parseSafetensors(build({ t: [1] })), /tensor "t": header entry must be an object/);
  });
  test('unknown or unsupported dtype', () => {
    expectFileError(() => parseSafetensors(entry({ dtype: 'F99' })), /tensor "t": unknown dtype "F99" \(supported: F32/);
    expectFileError(() => parseSafetensors(entry({ dtype: 'constructor' })), /unknown dtype "constructor"/);
    expectFileError(() => parseSafetensors(entry({ dtype: 7 })), /unknown dtype 7/);
    expectFileError(() => parseSafetensors(entry({ dtype: undefined })), /unknown dtype undefined/);
    expectFileError(() => parseSafetensors(entry({ dtype: 'BOOL' })), /dtype BOOL is not supported here; convert the tensor/);
  });
  test('shape not an array of non-negative safe integers', () => {
    for (const shape of ['2', [2.5], [-1], [2 ** 53], [null], ['2'], undefined, { 0: 2 }]) {
      expectFileError(() => parseSafetensors(entry({ shape })), /tensor "t": shape .* must be an array of non-negative integers/);
    }
  });
  test('data_offsets not [begin, end] integers', () => {
    for (const data_offsets of [[0], [0, 8, 8], [0, 8.5], ['0', 8], [-1, 8], null, { begin: 0, end: 8 }]) {
      expectFileError(() => parseSafetensors(entry({ data_offsets })), /tensor "t": data_offsets .* must be \[begin, end\]/);
    }
  });
  test('end before begin', () => {
    expectFileError(() => parseSafetensors(entry({ data_offsets: [8, 0] })), /tensor "t": data_offsets \[8, 0\] end before they begin/);
  });
  test('end beyond the data buffer', () => {
    expectFileError(() => parseSafetensors(build({ t: ok }, 6)), /tensor "t": data_offsets \[0, 8\] run past the end of the data buffer \(6 bytes\)/);
  });
  test('byte count does not match dtype and shape', () => {
    expectFileError(() => parseSafetensors(entry({ shape: [3] })), /tensor "t": data_offsets \[0, 8\] span 8 bytes but dtype F32 with shape \[3\] needs 12 bytes/);
    expectFileError(() => parseSafetensors(entry({ dtype: 'F64' })), /needs 16 bytes/);
    expectFileError(() => parseSafetensors(entry({ shape: [2 ** 40, 2 ** 40] })), /needs more bytes than any file holds/);
  });
  test('overlapping ranges', () => {
    const bytes = build({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } }, 6);
    expectFileError(() => parseSafetensors(bytes), /tensor "b": data_offsets \[2, 6\] overlap tensor "a" \[0, 4\]/);
    const same = build({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, 4);
    expectFileError(() => parseSafetensors(same), /overlap/);
    const inside = build({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, z: { dtype: 'U8', shape: [0], data_offsets: [2, 2] } }, 4);
    expectFileError(() => parseSafetensors(inside), /tensor "z".*overlap/);
  });
  test('holes and uncovered trailing bytes', () => {
    const hole = build({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [3, 5] } }, 5);
    expectFileError(() => parseSafetensors(hole), /data bytes \[2, 3\) belong to no tensor \(hole before tensor "b"\)/);
    const start = build({ a: { dtype: 'U8', shape: [2], data_offsets: [1, 3] } }, 3);
    expectFileError(() => parseSafetensors(start), /data bytes \[0, 1\) belong to no tensor/);
    expectFileError(() => parseSafetensors(build({ t: ok }, 9)), /data bytes \[8, 9\) at the end of the file belong to no tensor/);
    expectFileError(() => parseSafetensors(build({}, 1)), /data bytes \[0, 1\) at the end/);
  });
  test('metadata that is not a string map', () => {
    expectFileError(() => parseSafetensors(build({ __metadata__: { a: 1 } })), /"__metadata__" entry "a" is 1, but metadata values must be strings/);
    expectFileError(() => parseSafetensors(build({ __metadata__: ['a'] })), /"__metadata__" must be an object/);
    expectFileError(() => parseSafetensors(build({ __metadata__: 'a' })), /"__metadata__" must be an object/);
    expect(parseSafetensors(build({ __metadata__: null })).metadata).toEqual({});
  });
  test('a "__proto__" metadata key or tensor name stays plain data', () => {
    const { tensors, metadata } = parseSafetensors(
      build('{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1),
    );
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(Object.keys(metadata)).toEqual(['__proto__']);
    expect([...tensors.keys()]).toEqual(['__proto__']);
  });
  test('deeply nested values give a short message, not a stack overflow', () => {
    const deep = `{"t":{"dtype":"F32","shape":${'['.repeat(100_000)}${']'.repeat(100_000)},"data_offsets":[0,0]}}`;
    const e = expectFileError(() => parseSafetensors(build(deep)), /shape \[\[\[…\]\]\] must be/);
    expect(e.message.length).toBeLessThan(300);
  });
  test('not a Uint8Array', () => {
    expectFileError(() => parseSafetensors(new ArrayBuffer(16) as unknown as Uint8Array), /expected the file contents as a Uint8Array/);
  });
});

describe('safetensors serialize rejects malformed tensors', () => {
  const t: Tensor = { dtype: 'float32', shape: [2], data: new Float32Array(2) };
  test('reserved name', () => {
    expectFileError(() => serializeSafetensors({ __metadata__: t }), /"__metadata__" is reserved/);
  });
  test('data kind or length not matching', () => {
    expectFileError(() => serializeSafetensors({ w: { ...t, data: new Float64Array(2) } }), /tensor "w": dtype float32 needs its data in a Float32Array, got a Float64Array/);
    expectFileError(() => serializeSafetensors({ w: { ...t, shape: [3] } }), /tensor "w": shape \[3\] has 3 elements but data holds 2/);
    expectFileError(() => serializeSafetensors({ w: { ...t, shape: [-2] } }), /tensor "w": shape \[-2\] is not an array of non-negative integers/);
    expectFileError(() => serializeSafetensors({ w: { ...t, dtype: 'complex' as DType } }), /unknown dtype "complex"/);
  });
  test('non-string metadata', () => {
    expectFileError(() => serializeSafetensors({ w: t }, { n: 1 as unknown as string }), /metadata entry "n" is 1/);
  });
});

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

describe('safetensors files', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'effnet-safetensors-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const t: Tensor = { dtype: 'int32', shape: [3], data: new Int32Array([1, -2, 3]) };

  test('write then read, overwriting, leaves no temporary file', async () => {
    const path = join(dir, 'model.safetensors');
    await writeFile(path, 'old contents');
    await writeSafetensors(path, { t }, { k: 'v' });
    expect(await readdir(dir)).toEqual(['model.safetensors']);
    expect(await readSafetensors(path)).toEqual({ tensors: new Map([['t', t]]), metadata: { k: 'v' } });
    expect(new Uint8Array(await readFile(path))).toEqual(serializeSafetensors({ t }, { k: 'v' }));
  });

  test('a failed write leaves the old file and no temporary file', async () => {
    const path = join(dir, 'keep.safetensors');
    await writeSafetensors(path, { t });
    const before = await readFile(path);
    await expect(writeSafetensors(path, { t: { ...t, shape: [4] } })).rejects.toThrow(/keep\.safetensors: tensor "t": shape \[4\]/);
    expect(await readFile(path)).toEqual(before);
    expect((await readdir(dir)).filter((f) => f.includes('keep'))).toEqual(['keep.safetensors']);
  });

  test('unwritable paths give OutputFileError, unreadable ones TensorFileError', async () => {
    const missing = join(dir, 'no-such-dir', 'x.safetensors');
    await expect(writeSafetensors(missing, { t })).rejects.toThrow(OutputFileError);
    await expect(writeSafetensors(missing, { t })).rejects.toThrow(/cannot write ".*x\.safetensors": .*check that the directory exists/);
    await expect(readSafetensors(missing)).rejects.toThrow(/x\.safetensors: cannot read the file/);
  });

  test('read errors name the path', async () => {
    const path = join(dir, 'bad.safetensors');
    await writeFile(path, new Uint8Array([1, 2, 3]));
    await expect(readSafetensors(path)).rejects.toThrow(`${path}: file is 3 bytes`);
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------------------------

const validFileArb = fc.tuple(tensorsArb, metadataArb).map(([entries, metadata]) => serializeSafetensors(new Map(entries), metadata));

/** Values likely to get past some checks and trip later ones. */
const trickyJsonArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: -2, max: 64 }),
  fc.constantFrom(...ST_NAMES, 'BOOL', 'F8_E4M3', '__proto__', 2 ** 53, 1e308, -0, 0.5),
  fc.array(fc.integer({ min: -1, max: 40 }), { maxLength: 3 }),
  fc.tuple(fc.nat({ max: 64 }), fc.nat({ max: 64 })),
);

type HeaderEdit = { target: number; field: string; value: unknown; remove: boolean };
const headerEditArb: fc.Arbitrary<HeaderEdit> = fc.record({
  target: fc.nat(),
  field: fc.constantFrom('dtype', 'shape', 'data_offsets', '<entry>', '<metadata>', '<new>', 'extra'),
  value: trickyJsonArb,
  remove: fc.boolean(),
});

function editHeader(bytes: Uint8Array, edits: HeaderEdit[]): Uint8Array {
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  for (const e of edits) {
    const names = Object.keys(header);
    const name = names.length ? names[e.target % names.length]! : 'x';
    if (e.field === '<entry>') {
      if (e.remove) delete header[name];
      else header[name] = e.value;
    } else if (e.field === '<metadata>') header['__metadata__'] = e.remove ? { k: e.value } : e.value;
    else if (e.field === '<new>') header[`n${e.target % 7}`] = { dtype: 'U8', shape: [e.target % 5], data_offsets: e.value };
    else {
      const entry = header[name];
      if (typeof entry === 'object' && entry !== null) {
        if (e.remove) delete (entry as Record<string, unknown>)[e.field];
        else (entry as Record<string, unknown>)[e.field] = e.value;
      }
    }
  }
  return build(header, bytes.subarray(8 + n));
}

describe('safetensors fuzzing: parse returns or throws TensorFileError, nothing else', () => {
  test.prop([fc.uint8Array({ maxLength: 200 })], { numRuns: 2000 })('random bytes', (bytes) => {
    parsesOrRejects(bytes);
  });

  test.prop([fc.nat({ max: 300 }), fc.uint8Array({ maxLength: 300 })], { numRuns: 2000 })('random bytes behind a plausible header size', (n, rest) => {
    parsesOrRejects(new Uint8Array([...u64le(n), ...rest]));
  });

  test.prop([fc.string({ unit: 'binary-ascii', maxLength: 80 }), fc.uint8Array({ maxLength: 40 })], { numRuns: 2000 })(
    'random header text',
    (text, data) => {
      parsesOrRejects(build(`{${text}}`, data));
    },
  );

  test.prop([validFileArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 })], { numRuns: 2000 })(
    'valid files with byte mutations and truncations',
    (bytes, mutations) => {
      parsesOrRejects(mutate(bytes, mutations));
    },
  );

  test.prop([validFileArb, fc.array(headerEditArb, { minLength: 1, maxLength: 3 })], { numRuns: 2000 })(
    'valid files with random header JSON edits',
    (bytes, edits) => {
      parsesOrRejects(editHeader(bytes, edits));
    },
  );

  test.prop(
    [
      fc.array(fc.tuple(fc.constantFrom('U8', 'F16', 'F32'), fc.nat({ max: 12 }), fc.nat({ max: 12 })), { maxLength: 5 }),
      fc.nat({ max: 24 }),
    ],
    { numRuns: 2000 },
  )('random ranges: overlaps, holes, zero-size tensors, short and long buffers', (ranges, dataLength) => {
    const size: Record<string, number> = { U8: 1, F16: 2, F32: 4 };
    const header = Object.fromEntries(
      ranges.map(([st, begin, count], i) => [`t${i}`, { dtype: st, shape: [count], data_offsets: [begin, begin + count * size[st]!] }]),
    );
    parsesOrRejects(build(header, dataLength));
  });

  test.prop([validFileArb, fc.nat()], { numRuns: 500 })('every truncation of a valid file is rejected', (bytes, cut) => {
    const short = bytes.subarray(0, cut % bytes.length);
    expect(() => parseSafetensors(short)).toThrow(TensorFileError);
  });
});
