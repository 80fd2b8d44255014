import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { TensorFileError } from '../errors.js';
import type { DType, Tensor, TensorData } from '../tensor.js';
import { numel } from '../tensor.js';
import { parseNpy, readNpy, serializeNpy, writeNpy } from './npy.js';
import { mutate, mutationArb } from '../../test/mutations.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const DTYPES: DType[] = ['float32', 'float64', 'float16', 'int64', 'int32', 'uint8'];
const SIZE: Record<DType, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, uint8: 1 };

function fromBytes(dtype: DType, bytes: Uint8Array, leadingElements = 0): TensorData {
  const size = SIZE[dtype];
  const off = leadingElements * size;
  const buffer = new ArrayBuffer(bytes.length + off);
  new Uint8Array(buffer).set(bytes, off);
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
  .record({ dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.nat({ max: 5 }), { maxLength: 4 }), lead: fc.nat({ max: 2 }) })
  .chain(({ dtype, shape, lead }) => {
    const n = numel(shape) * SIZE[dtype];
    return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes) => ({ dtype, shape, data: fromBytes(dtype, bytes, lead) }));
  });

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const MAGIC = [0x93, ...ascii('NUMPY')];

/** An npy file with the given header text (used as is: no padding added) and data. */
function npy(header: string, data: ArrayLike<number> = [], version = 1, encode = (s: string) => ascii(s)): Uint8Array {
  const h = encode(header);
  const len = version === 1 ? [h.length & 0xff, h.length >> 8] : [h.length & 0xff, (h.length >> 8) & 0xff, (h.length >> 16) & 0xff, h.length >>> 24];
  return new Uint8Array([...MAGIC, version, 0, ...len, ...h, ...Array.from(data)]);
}

/** A header as numpy pads it for version 1.0: spaces, then '\n', so that data start at a multiple of 64. */
function padded(dict: string, preamble = 10): string {
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  return dict.padEnd(total - preamble - 1, ' ') + '\n';
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

function parsesOrRejects(bytes: Uint8Array): void {
  let t: Tensor;
  try {
    t = parseNpy(bytes, 'fuzz.npy');
  } catch (e) {
    if (e instanceof TensorFileError) {
      expect(e.message.startsWith('fuzz.npy: ')).toBe(true);
      return;
    }
    throw e;
  }
  expect(DTYPES).toContain(t.dtype);
  expect(t.data.length).toBe(numel(t.shape));
  expect(t.data.BYTES_PER_ELEMENT).toBe(SIZE[t.dtype]);
  expect(t.data.byteLength).toBeLessThanOrEqual(bytes.length - 10);
}

const F32_0_TO_5 = [
  0x00, 0x00, 0x00, 0x00, // 0
  0x00, 0x00, 0x80, 0x3f, // 1
  0x00, 0x00, 0x00, 0x40, // 2
  0x00, 0x00, 0x40, 0x40, // 3
  0x00, 0x00, 0x80, 0x40, // 4
  0x00, 0x00, 0xa0, 0x40, // 5
];
const DICT_2x3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

describe('npy round trip', () => {
  test.prop([tensorArb], { numRuns: 500 })('serialize -> parse is identical, bit for bit; data 64-aligned', (t) => {
    const bytes = serializeNpy(t);
    expect([...bytes.subarray(0, 8)]).toEqual([...MAGIC, 1, 0]);
    const headerLength = bytes[8]! | (bytes[9]! << 8);
    expect((10 + headerLength) % 64).toBe(0);
    expect(bytes[10 + headerLength - 1]).toBe(0x0a);

    const back = parseNpy(bytes);
    expect(back.dtype).toBe(t.dtype);
    expect(back.shape).toEqual(t.shape);
    expect(back.data.constructor).toBe(t.data.constructor);
    expect(rawBytes(back.data)).toEqual(rawBytes(t.data));
    expect(serializeNpy(back)).toEqual(bytes);
  });

  test('NaN payloads survive', () => {
    const bits = new Uint32Array([0x7f800001, 0xffc00123, 0x7fc00000]);
    const back = parseNpy(serializeNpy({ dtype: 'float32', shape: [3], data: new Float32Array(bits.buffer) }));
    expect(new Uint32Array(back.data.buffer)).toEqual(bits);
  });
});

// ---------------------------------------------------------------------------------------------
// Known bytes
// ---------------------------------------------------------------------------------------------

describe('npy known bytes', () => {
  test('parses np.save(np.arange(6, dtype=np.float32).reshape(2, 3)) as numpy >= 1.24 writes it', () => {
    // numpy adds 21 - len(repr(shape[0])) = 20 spaces of growth room after the dict, then pads to 64.
    const header = padded(DICT_2x3 + ' '.repeat(20));
    expect(header.length).toBe(118);
    const file = npy(header, F32_0_TO_5);
    expect([...file.subarray(0, 10)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 118, 0]);
    expect(file.length).toBe(128 + 24);
    expect(parseNpy(file)).toEqual({ dtype: 'float32', shape: [2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) });
  });

  test('serializes to the bytes older numpy writes (dict, spaces, newline, data at 128)', () => {
    const bytes = serializeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) });
    expect(bytes).toEqual(npy(padded(DICT_2x3), F32_0_TO_5));
    expect(bytes.length).toBe(128 + 24);
  });

  test('shapes () and (n,), every descr', () => {
    expect(parseNpy(npy(padded("{'descr': '<f8', 'fortran_order': False, 'shape': (), }"), [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]))).toEqual({
      dtype: 'float64',
      shape: [],
      data: new Float64Array([1]),
    });
    expect(parseNpy(npy(padded("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }"), [0xfe, ...Array(7).fill(0xff)]))).toEqual({
      dtype: 'int64',
      shape: [1],
      data: new BigInt64Array([-2n]),
    });
    const cases: [string, DType, number[], TensorData][] = [
      ['<i4', 'int32', [0xff, 0xff, 0xff, 0xff], new Int32Array([-1])],
      ['|u1', 'uint8', [7], new Uint8Array([7])],
      ['<u1', 'uint8', [7], new Uint8Array([7])],
      ['<f2', 'float16', [0x00, 0x3c], new Uint16Array([0x3c00])],
    ];
    for (const [descr, dtype, data, expected] of cases) {
      expect(parseNpy(npy(padded(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`), data))).toEqual({ dtype, shape: [1], data: expected });
    }
    expect(serializeNpy({ dtype: 'uint8', shape: [0], data: new Uint8Array(0) })).toEqual(npy(padded("{'descr': '|u1', 'fortran_order': False, 'shape': (0,), }")));
  });

  test('versions 2.0 and 3.0', () => {
    const v2 = npy(padded(DICT_2x3, 12), F32_0_TO_5, 2);
    expect(parseNpy(v2).data).toEqual(new Float32Array([0, 1, 2, 3, 4, 5]));
    const utf8 = (s: string) => [...new TextEncoder().encode(s)];
    const v3 = npy(padded(DICT_2x3, 12), F32_0_TO_5, 3, utf8);
    expect(parseNpy(v3).shape).toEqual([2, 3]);
  });

  test('tolerant header syntax: double quotes, no trailing comma, any spacing and key order, Python 2 longs', () => {
    for (const dict of [
      '{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}',
      "{ 'shape' : ( 2 , 3 , ) , 'fortran_order':False,'descr':'<f4' , }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
      "{'descr':\t'<f4',\n'fortran_order': False, 'shape': ((2), 3)}",
    ]) {
      expect(parseNpy(npy(padded(dict), F32_0_TO_5)).shape).toEqual([2, 3]);
    }
  });

  test('data are copied out, aligned, from a view at an odd offset', () => {
    const file = npy(padded(DICT_2x3), F32_0_TO_5);
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const t = parseNpy(shifted.subarray(1));
    expect(t.data).toEqual(new Float32Array([0, 1, 2, 3, 4, 5]));
    expect(t.data.byteOffset).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

describe('npy malformed input', () => {
  const withDict = (dict: string, data: ArrayLike<number> = F32_0_TO_5) => npy(padded(dict), data);

  test('bad magic, short file, unsupported version', () => {
    expectFileError(() => parseNpy(new Uint8Array([1, 2, 3]), 'a.npy'), /^a\.npy: not an npy file: it does not start with the magic bytes/);
    expectFileError(() => parseNpy(new Uint8Array(MAGIC)), /not an npy file/);
    expectFileError(() => parseNpy(npy(padded(DICT_2x3), F32_0_TO_5, 4)), /npy format version 4\.0 is not supported \(supported: 1\.0, 2\.0, 3\.0\)/);
    expectFileError(() => parseNpy(new Uint8Array([...MAGIC, 2, 0, 0, 0])), /too short for a version 2\.0 preamble/);
  });
  test('header length beyond the file', () => {
    expectFileError(() => parseNpy(new Uint8Array([...MAGIC, 1, 0, 200, 0, ...ascii('{}')])), /header length 200 runs past the end of the file/);
    expectFileError(() => parseNpy(new Uint8Array([...MAGIC, 2, 0, 0xff, 0xff, 0xff, 0xff])), /header length 4294967295 runs past the end/);
  });
  test('header not a dict literal', () => {
    expectFileError(() => parseNpy(withDict("['descr', '<f4']")), /header must be a dict/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4'")), /header is not a Python dict literal.*expected ',' or '}'/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4}")), /unterminated string/);
    expectFileError(() => parseNpy(withDict("{'descr' '<f4'}")), /expected ':'/);
    expectFileError(() => parseNpy(withDict("{'shape': __import__('os').system('x')}")), /unexpected name "__import__"/);
    expectFileError(() => parseNpy(withDict("{1: 2}")), /dict keys must be strings/);
    expectFileError(() => parseNpy(withDict("{'a': 1.5}")), /only plain integers/);
    expectFileError(() => parseNpy(withDict("{'a': 'x\\q'}")), /unsupported escape/);
    expectFileError(() => parseNpy(withDict(`${DICT_2x3} x`)), /unexpected text after the closing brace/);
    expectFileError(() => parseNpy(withDict('')), /unexpected end of header/);
    expectFileError(() => parseNpy(withDict(`{'a': ${'('.repeat(10_000)}`)), /nesting deeper than 32 levels/);
  });
  test('wrong, missing, extra or duplicate keys', () => {
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'shape': (2, 3)}")), /header keys must be exactly 'descr', 'fortran_order' and 'shape', got 'descr', 'shape'/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}")), /got 'descr', 'fortran_order', 'shape', 'x'/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'descr': '<f4'}")), /key "descr" appears twice/);
  });
  test('big-endian, unsupported and structured descr', () => {
    expectFileError(() => parseNpy(withDict("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3)}")), /descr ">f4" is big-endian; only little-endian .*newbyteorder\('<'\)/);
    expectFileError(() => parseNpy(withDict("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3)}")), /descr "<c8" is not supported \(supported: <f4, <f8, <f2, <i8, <i4, \|u1\)/);
    expectFileError(() => parseNpy(withDict("{'descr': '|b1', 'fortran_order': False, 'shape': (2, 3)}")), /descr "\|b1" is not supported/);
    expectFileError(() => parseNpy(withDict("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3)}")), /structured or unknown dtype/);
  });
  test('Fortran order', () => {
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}")), /fortran_order is True, but only C-ordered arrays are supported; save np\.ascontiguousarray/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}")), /fortran_order must be True or False, got 0/);
  });
  test('shape not a tuple of non-negative integers', () => {
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}")), /shape must be a tuple/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}")), /shape must be a tuple .* got 6/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, -3)}")), /shape must be a tuple of non-negative integers, got \[-2, -3\]/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': ('2', 3)}")), /shape must be a tuple of non-negative integers/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 3)}")), /non-negative integers/);
  });
  test('data length must match exactly', () => {
    expectFileError(() => parseNpy(withDict(DICT_2x3, F32_0_TO_5.slice(0, 20))), /shape \(2, 3\) of <f4 needs 24 bytes of data but the file has 20; the file is truncated/);
    expectFileError(() => parseNpy(withDict(DICT_2x3, [...F32_0_TO_5, 0])), /needs 24 bytes .* has 25; remove the 1 trailing bytes/);
    expectFileError(() => parseNpy(withDict("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}")), /needs more bytes than any file holds/);
  });
  test('version 3.0 header not UTF-8', () => {
    expectFileError(() => parseNpy(npy('{}', [], 3, () => [0x7b, 0xc3, 0x28, 0x7d])), /version 3\.0 header is not valid UTF-8/);
  });
  test('not a Uint8Array', () => {
    expectFileError(() => parseNpy([1, 2] as unknown as Uint8Array), /expected the file contents as a Uint8Array/);
  });
});

describe('npy serialize rejects what npy cannot hold', () => {
  test('bfloat16 has no npy dtype', () => {
    expectFileError(() => serializeNpy({ dtype: 'bfloat16', shape: [1], data: new Uint16Array(1) }), /dtype bfloat16 has no npy equivalent; convert it to float32 first/);
  });
  test('malformed tensors', () => {
    expectFileError(() => serializeNpy({ dtype: 'int64', shape: [2], data: new Int32Array(2) }), /tensor: dtype int64 needs its data in a BigInt64Array, got a Int32Array/);
    expectFileError(() => serializeNpy({ dtype: 'int32', shape: [3], data: new Int32Array(2) }), /shape \[3\] has 3 elements but data holds 2/);
  });
  test('many dimensions switch to version 2.0', () => {
    const shape = Array<number>(25_000).fill(1);
    const bytes = serializeNpy({ dtype: 'uint8', shape, data: new Uint8Array([9]) });
    expect(bytes[6]).toBe(2);
    const len = new DataView(bytes.buffer).getUint32(8, true);
    expect((12 + len) % 64).toBe(0);
    expect(parseNpy(bytes)).toEqual({ dtype: 'uint8', shape, data: new Uint8Array([9]) });
  });
});

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

describe('npy files', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'effnet-npy-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const t: Tensor = { dtype: 'float64', shape: [2], data: new Float64Array([0.5, -1]) };

  test('write then read, overwriting, leaves no temporary file', async () => {
    const path = join(dir, 'x.npy');
    await writeFile(path, 'old');
    await writeNpy(path, t);
    expect(await readdir(dir)).toEqual(['x.npy']);
    expect(await readNpy(path)).toEqual(t);
    expect(new Uint8Array(await readFile(path))).toEqual(serializeNpy(t));
  });

  test('a failed write leaves the old file', async () => {
    const path = join(dir, 'keep.npy');
    await writeNpy(path, t);
    await expect(writeNpy(path, { dtype: 'bfloat16', shape: [0], data: new Uint16Array(0) })).rejects.toThrow(/keep\.npy: dtype bfloat16/);
    expect(await readNpy(path)).toEqual(t);
    expect((await readdir(dir)).filter((f) => f.includes('keep'))).toEqual(['keep.npy']);
  });

  test('missing paths give TensorFileError naming them', async () => {
    const missing = join(dir, 'nope', 'y.npy');
    await expect(readNpy(missing)).rejects.toThrow(TensorFileError);
    await expect(readNpy(missing)).rejects.toThrow(/y\.npy: cannot read the file/);
    await expect(writeNpy(missing, t)).rejects.toThrow(/cannot write ".*y\.npy": .*check that the directory exists/);
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------------------------

/** Pieces of Python syntax, so that header edits produce near-valid literals. */
const tokenArb = fc.oneof(
  fc.constantFrom('(', ')', '[', ']', '{', '}', ',', ':', "'", '"', ' ', '\\', 'True', 'False', 'None', '-', 'L', '0', '1', '7', '99999999999999999999'),
  fc.constantFrom("'descr'", "'shape'", "'fortran_order'", "'<f4'", "'>f4'", "'|u1'", "'<i8'", "'<f2'", '()', '(3,)', '(2, 3)', '(0,)'),
  fc.string({ unit: 'binary-ascii', maxLength: 3 }),
);

const headerEditArb = fc.record({ at: fc.nat(), remove: fc.nat({ max: 6 }), insert: fc.array(tokenArb, { maxLength: 4 }) });

function editHeader(bytes: Uint8Array, edits: { at: number; remove: number; insert: string[] }[], keepLengthField: boolean): Uint8Array {
  const len = bytes[8]! | (bytes[9]! << 8);
  let text = String.fromCharCode(...bytes.subarray(10, 10 + len));
  for (const e of edits) {
    const at = e.at % (text.length + 1);
    text = text.slice(0, at) + e.insert.join('') + text.slice(at + e.remove);
  }
  const h = ascii(text).map((c) => c & 0xff);
  const declared = keepLengthField ? len : h.length;
  return new Uint8Array([...MAGIC, 1, 0, declared & 0xff, (declared >> 8) & 0xff, ...h, ...bytes.subarray(10 + len)]);
}

/** Syntactically valid dicts whose entries are random: valid, wrong-typed, missing, extra, big-endian, Fortran... */
const structuredHeaderArb: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom("'<f4'", "'<f8'", "'<f2'", "'<i8'", "'<i4'", "'|u1'", "'>f4'", "'>u1'", "'<c8'", "'|b1'", "'f4'", "[('a', '<f4')]", '1', 'None', "''"),
    fc.constantFrom('False', 'True', '0', 'None', "'False'"),
    fc.oneof(
      fc.array(fc.integer({ min: -1, max: 6 }), { maxLength: 4 }).map((s) => `(${s.join(', ')}${s.length === 1 ? ',' : ''})`),
      fc.constantFrom('(3)', '[2, 3]', "('2',)", '(99999999999999999999,)', '((2,),)', 'None', '(4294967296, 4294967296)'),
    ),
    fc.subarray(['descr', 'fortran_order', 'shape', 'extra']),
    fc.boolean(),
  )
  .map(([descr, fortran, shape, keys, reverse]) => {
    const value: Record<string, string> = { descr, fortran_order: fortran, shape, extra: '1' };
    const order = reverse ? [...keys].reverse() : keys;
    return `{${order.map((k) => `'${k}': ${value[k]}`).join(', ')}}`;
  });

describe('npy fuzzing: parse returns or throws TensorFileError, nothing else', () => {
  test.prop([fc.uint8Array({ maxLength: 200 })], { numRuns: 2000 })('random bytes', (bytes) => {
    parsesOrRejects(bytes);
  });

  test.prop([fc.constantFrom(1, 2, 3), fc.nat({ max: 0xffff }), fc.uint8Array({ maxLength: 200 })], { numRuns: 2000 })(
    'random bytes behind a valid magic and version',
    (version, length, rest) => {
      const len = version === 1 ? [length & 0xff, length >> 8] : [length & 0xff, length >> 8, 0, 0];
      parsesOrRejects(new Uint8Array([...MAGIC, version, 0, ...len, ...rest]));
    },
  );

  test.prop([fc.string({ unit: 'binary-ascii', maxLength: 100 }), fc.uint8Array({ maxLength: 48 })], { numRuns: 2000 })(
    'random header text',
    (text, data) => {
      parsesOrRejects(npy(`{${text}}`, data));
    },
  );

  test.prop([tensorArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 })], { numRuns: 2000 })(
    'valid files with byte mutations and truncations',
    (t, mutations) => {
      parsesOrRejects(mutate(serializeNpy(t), mutations));
    },
  );

  test.prop([tensorArb, fc.array(headerEditArb, { minLength: 1, maxLength: 3 }), fc.boolean()], { numRuns: 2000 })(
    'valid files with random header text edits',
    (t, edits, keepLengthField) => {
      parsesOrRejects(editHeader(serializeNpy(t), edits, keepLengthField));
    },
  );

  test.prop([structuredHeaderArb, fc.uint8Array({ maxLength: 64 }), fc.boolean()], { numRuns: 2000 })(
    'well-formed dicts with random entries, reaching the semantic checks',
    (dict, data, pad) => {
      parsesOrRejects(npy(pad ? padded(dict) : dict, data));
    },
  );

  test.prop([tensorArb, fc.nat()], { numRuns: 500 })('every truncation of a valid file is rejected', (t, cut) => {
    const bytes = serializeNpy(t);
    expect(() => parseNpy(bytes.subarray(0, cut % bytes.length))).toThrow(TensorFileError);
  });
});

describe('npy regressions found by fuzzing', () => {
  it('reads a shape written as (-0, 0) as [0, 0] (Python ints have no negative zero)', () => {
    const t = parseNpy(npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (-0, 0), }`, new Uint8Array(0)));
    expect(Object.is(t.shape[0], 0)).toBe(true);
    expect(t.shape).toEqual([0, 0]);
  });
});
