import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../../testing/peers.js';
import {
  contiguous,
  legacyPth,
  pickle,
  Pickler,
  Raw,
  Reduce,
  STORAGE_OF,
  TensorSpec,
  type TorchDTypeName,
  Tuple,
  zipArchive,
  zipPth,
} from '../../test/pth-writer.js';
import { TensorFileError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { PickleError, runPickle } from './pickle.js';
import { CHECKPOINT_KEYS, parsePth, readPth } from './pth.js';
import { serializeSafetensors } from './safetensors.js';
import { serializeNpy } from './npy.js';
import { parseWeightFile, readWeightFile, sniffWeightFile } from './weight-file.js';
import { mutate, mutationArb } from '../../test/mutations.js';

const rawBytes = (t: Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
const EFFNET_DTYPE: Record<TorchDTypeName, string> = { float32: 'float32', float64: 'float64', float16: 'float16', bfloat16: 'bfloat16', int64: 'int64', int32: 'int32', uint8: 'uint8', bool: 'uint8', int16: 'int16' };

/** The elements a view selects, in C order, computed index by index (not the reader's odometer). */
function viewBytes(t: TensorSpec): Uint8Array {
  const size = STORAGE_OF[t.storage.dtype][1];
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(n * size);
  for (let flat = 0; flat < n; flat++) {
    let rest = flat;
    let at = t.offset;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      at += (rest % t.shape[d]!) * t.stride[d]!;
      rest = Math.floor(rest / t.shape[d]!);
    }
    out.set(t.storage.bytes.subarray(at * size, (at + 1) * size), flat * size);
  }
  return out;
}

const READ_DTYPES: TorchDTypeName[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];

/** A random strided view (offsets, strides 0-5 in any order, overlapping or not) of a random storage. */
const viewArb = (key: string): fc.Arbitrary<TensorSpec> =>
  fc
    .record({
      dtype: fc.constantFrom(...READ_DTYPES),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
      offset: fc.nat({ max: 3 }),
      extra: fc.nat({ max: 3 }),
      strideSeed: fc.array(fc.nat({ max: 5 }), { minLength: 3, maxLength: 3 }),
      contiguous: fc.boolean(),
    })
    .chain(({ dtype, shape, offset, extra, strideSeed, contiguous: c }) => {
      const stride = c ? shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1)) : shape.map((_, i) => strideSeed[i]!);
      const reach = shape.some((d) => d === 0) ? 0 : shape.reduce((s, d, i) => s + (d - 1) * stride[i]!, 0) + 1;
      const numel = offset + reach + extra;
      const size = STORAGE_OF[dtype][1];
      return fc.uint8Array({ minLength: numel * size, maxLength: numel * size }).map((bytes) => new TensorSpec({ key, dtype, bytes }, offset, shape, stride));
    });

const stateDictArb = fc
  .uniqueArray(fc.stringMatching(/^[a-z][a-z0-9_.]{0,12}$/), { minLength: 1, maxLength: 5 })
  .chain((names) => fc.tuple(...names.map((n, i) => viewArb(String(i)).map((t): [string, TensorSpec] => [n, t]))));

function expectFileError(fn: () => unknown, pattern: RegExp): TensorFileError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TensorFileError);
  expect((err as Error).message).toMatch(pattern);
  return err as TensorFileError;
}

// ---------------------------------------------------------------------------------------------

describe('parsePth: files laid out like torch.save writes them', () => {
  test.prop([stateDictArb, fc.constantFrom('zip', 'zip-deflate', 'zip64', 'legacy')], { numRuns: 300 })(
    'every dtype and strided view reads back exactly, in both formats',
    (entries, format) => {
      const sd = new Map(entries);
      const bytes =
        format === 'legacy' ? legacyPth(sd) : zipPth(sd, { deflate: format === 'zip-deflate', zip64: format === 'zip64', prefix: 'my_model' });
      const r = parsePth(bytes, { file: 'x.pth' });
      expect(r.format).toBe(format === 'legacy' ? 'legacy' : 'zip');
      expect(r.key).toBeNull();
      expect([...r.tensors.keys()]).toEqual(entries.map(([n]) => n));
      for (const [name, spec] of entries) {
        const t = r.tensors.get(name)!;
        expect(t.dtype).toBe(EFFNET_DTYPE[spec.storage.dtype]);
        expect(t.shape).toEqual(spec.shape);
        expect(rawBytes(t)).toEqual(viewBytes(spec));
        expect(t.data.byteOffset % t.data.BYTES_PER_ELEMENT).toBe(0);
      }
    },
  );

  it('tensors sharing a storage each get their own copy; nn.Parameters read as tensors', () => {
    const storage = { key: '0', dtype: 'float32' as const, bytes: f32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9) };
    const sd = new Map([
      ['a', new TensorSpec(storage, 0, [6], [1])],
      ['b', new TensorSpec(storage, 4, [2, 3], [3, 1])],
      ['w', new TensorSpec({ key: '1', dtype: 'float32', bytes: f32(1, 2) }, 0, [2], [1], true)],
    ]);
    for (const bytes of [zipPth(sd), legacyPth(sd)]) {
      const r = parsePth(bytes);
      expect(Array.from(r.tensors.get('a')!.data as Float32Array)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(Array.from(r.tensors.get('b')!.data as Float32Array)).toEqual([4, 5, 6, 7, 8, 9]);
      expect(r.tensors.get('a')!.data.buffer).not.toBe(r.tensors.get('b')!.data.buffer);
      expect(Array.from(r.tensors.get('w')!.data as Float32Array)).toEqual([1, 2]);
    }
  });

  it('untyped storages (counted in bytes) rebuilt by _rebuild_tensor_v3 with an explicit dtype', () => {
    const pkl = new Pickler()
      .proto(2)
      .emptyDict()
      .mark()
      .str('w')
      .global('torch._utils', '_rebuild_tensor_v3')
      .mark()
      .mark()
      .str('storage')
      .global('torch.storage', 'UntypedStorage')
      .str('0')
      .str('cpu')
      .int(8)
      .tuple()
      .binpersid()
      .int(1)
      .mark()
      .int(1)
      .tuple()
      .mark()
      .int(1)
      .tuple()
      .bool(false)
      .global('collections', 'OrderedDict')
      .emptyTuple()
      .reduce()
      .global('torch', 'float32')
      .tuple()
      .reduce()
      .setitems()
      .stop()
      .done();
    const r = parsePth(zipArchive([['a/data.pkl', pkl], ['a/data/0', f32(1.5, -2)]]));
    expect(r.tensors.get('w')).toEqual({ dtype: 'float32', shape: [1], data: Float32Array.from([-2]) });
  });

  it('byteorder "big" (PyTorch >= 2.1 on a big-endian machine) is swapped to little-endian values', () => {
    const be = new Uint8Array([0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0]); // 1, -2 as big-endian float32
    const sd = new Map([['x', contiguous('0', 'float32', [2], be)]]);
    expect(Array.from(parsePth(zipPth(sd, { byteorder: 'big' })).tensors.get('x')!.data as Float32Array)).toEqual([1, -2]);
    expect(Array.from(parsePth(zipPth(sd, { byteorder: 'little' })).tensors.get('x')!.data as Float32Array)).not.toEqual([1, -2]);
    expectFileError(() => parsePth(zipPth(sd, { byteorder: 'middle' })), /byteorder says "middle"/);
  });

  it('a dtype effnet does not read is an error only when its tensor is among the weights', () => {
    const i16 = contiguous('0', 'int16', [2], new Uint8Array(4));
    expectFileError(() => parsePth(zipPth(new Map([['q', i16]]))), /tensor "q" has dtype int16, which effnet does not read/);
    const ckpt = { state_dict: new Map([['w', contiguous('1', 'float32', [1], f32(5))]]), optimizer: { state: new Map([[0, { step: i16 }]]) } };
    expect(parsePth(zipPth(ckpt)).tensors.get('w')!.shape).toEqual([1]);
  });
});

describe('parsePth: which dict holds the weights', () => {
  const A = new Map([
    ['conv.weight', contiguous('0', 'float32', [1], f32(1))],
    ['fc.bias', contiguous('1', 'float32', [1], f32(2))],
  ]);
  const B = new Map([['conv.weight', contiguous('2', 'float32', [1], f32(3))]]);
  const value = (bytes: Uint8Array, name: string, key?: string) => (parsePth(bytes, { weightsKey: key }).tensors.get(name)!.data as Float32Array)[0];

  it(`searches ${CHECKPOINT_KEYS.slice(0, 4).join(', ')}... in timm's order (EMA weights first), reporting the key`, () => {
    const both = zipPth({ epoch: 3, state_dict: A, state_dict_ema: B });
    expect(parsePth(both).key).toBe('state_dict_ema');
    expect(value(both, 'conv.weight')).toBe(3);
    expect(parsePth(zipPth({ model: A, state_dict: B })).key).toBe('state_dict');
    expect(parsePth(zipPth({ model_state_dict: A, other: 1 })).key).toBe('model_state_dict');
    expect(parsePth(zipPth({ my_weights: A, step: 7 })).key).toBe('my_weights');
    expect(parsePth(zipPth({ state_dict: A, state_dict_ema: B })).weightKeys).toEqual(['state_dict', 'state_dict_ema']);
  });

  it('weightsKey chooses explicitly; an unknown key lists the entries that hold weights', () => {
    const both = zipPth({ epoch: 3, state_dict: A, state_dict_ema: B });
    expect(value(both, 'conv.weight', 'state_dict')).toBe(1);
    expectFileError(() => parsePth(both, { weightsKey: 'model' }), /weights key "model" is not in the checkpoint; entries holding weights: "state_dict", "state_dict_ema"/);
    expectFileError(() => parsePth(both, { weightsKey: 'epoch' }), /weights key "epoch" holds 3, not a dict of tensors/);
    expectFileError(() => parsePth(zipPth(A), { weightsKey: 'state_dict' }), /the file is itself a state_dict .*drop the weights key/);
  });

  it('several unconventional candidates, none at all, or a lone tensor are errors that say what is there', () => {
    expectFileError(() => parsePth(zipPth({ first: A, second: B })), /several entries hold weights \("first", "second"\); choose one with the weights key/);
    expectFileError(() => parsePth(zipPth({ epoch: 1, lr: 0.5 })), /no entry holds a dict of tensors; the checkpoint's keys are "epoch", "lr"/);
    expectFileError(() => parsePth(zipPth(contiguous('0', 'float32', [1], f32(1)))), /holds a tensor \[1\], not a state_dict.*not a lone tensor/);
  });

  it('removes a prefix every name shares from DataParallel (module.) or torch.compile (_orig_mod.), and says so', () => {
    const wrapped = new Map([...A].map(([k, v]) => [`module._orig_mod.${k}`, v]));
    const r = parsePth(legacyPth({ state_dict: wrapped }));
    expect([...r.tensors.keys()]).toEqual(['conv.weight', 'fc.bias']);
    expect(r.strippedPrefix).toBe('module._orig_mod.');
    const partly = new Map([...A].map(([k, v], i) => [i ? k : `module.${k}`, v]));
    expect(parsePth(zipPth(partly)).strippedPrefix).toBeNull();
  });

  it('reads past the non-tensor parts of a training checkpoint (numbers, bytes, sets, a Namespace, numpy scalars)', () => {
    const namespace = new Raw(
      new Pickler()
        .global('argparse', 'Namespace')
        .emptyTuple()
        .newobj()
        .emptyDict()
        .mark()
        .str('lr')
        .float(0.1)
        .str('layers')
        .emptyList()
        .setitems()
        .build()
        .done(),
    );
    const scalar = new Reduce('numpy.core.multiarray', 'scalar', [new Reduce('numpy', 'dtype', ['f8', false, true]), new Uint8Array(8)]);
    const ckpt = {
      epoch: 3,
      big: 2n ** 70n,
      neg: -5,
      note: new Reduce('_codecs', 'encode', ['\u00ff', 'latin1']),
      tags: new Reduce('builtins', 'set', [['a', 'b']]),
      device: new Reduce('torch', 'device', ['cuda', 0]),
      size: new Reduce('torch', 'Size', [new Tuple([1, 2])]),
      args: namespace,
      metric: scalar,
      state_dict: A,
      optimizer: { state: new Map([[0, { momentum_buffer: contiguous('9', 'float32', [1], f32(7)) }]]), param_groups: [{ lr: 0.1, params: [0] }] },
    };
    for (const bytes of [zipPth(ckpt), legacyPth(ckpt)]) {
      const r = parsePth(bytes);
      expect(r.key).toBe('state_dict');
      expect([...r.tensors.keys()]).toEqual(['conv.weight', 'fc.bias']);
    }
  });
});

describe('parsePth: refuses to run anything', () => {
  const w = contiguous('0', 'float32', [1], f32(1));
  const hostile: [string, string, unknown[]][] = [
    ['posix', 'system', ['touch /tmp/effnet-pwned']],
    ['os', 'system', ['touch /tmp/effnet-pwned']],
    ['builtins', 'eval', ['1+1']],
    ['__builtin__', 'exec', ['x=1']],
    ['subprocess', 'Popen', [['touch', '/tmp/effnet-pwned']]],
    ['commands', 'getoutput', ['id']],
    ['builtins', 'getattr', ['abc', 'upper']],
    ['torch', 'load', ['x']],
    ['collections', 'defaultdict', []],
  ];
  const python3Name = (m: string) => ({ __builtin__: 'builtins', commands: 'subprocess' })[m] ?? m;

  it.each(hostile)('%s.%s is an error naming the global, in both formats', (module, name, args) => {
    const ckpt = { w, x: new Reduce(module, name, args) };
    for (const bytes of [zipPth(ckpt), legacyPth(ckpt)]) {
      const e = expectFileError(() => parsePth(bytes, { file: 'evil.pth' }), new RegExp(`^evil\\.pth: .*refuses the global "${python3Name(module)}\\.${name}"`));
      expect(e.file).toBe('evil.pth');
    }
  });

  it('refuses a global that is only referenced, and one named by STACK_GLOBAL', () => {
    expectFileError(() => parsePth(zipPth({ w, f: new Raw(new Pickler().global('os', 'system').done()) })), /refuses the global "os\.system"/);
    const stack = new Raw(new Pickler().str('os').str('system').bytes(0x93).done());
    expectFileError(() => parsePth(zipPth({ w, f: stack })), /refuses the global "os\.system"/);
  });

  it('calls nothing that is not a callable it implements: REDUCE on a storage type or a string is an error', () => {
    expectFileError(() => parsePth(zipPth({ w, f: new Reduce('torch', 'FloatStorage', []) })), /REDUCE on "torch\.FloatStorage", which is allowed as a value but cannot be called/);
    const strCall = new Raw(new Pickler().str('os.system').emptyTuple().reduce().done());
    expectFileError(() => parsePth(zipPth({ w, f: strCall })), /REDUCE on a str, which is not an allowed callable/);
    expectFileError(() => parsePth(zipPth({ w, f: new Reduce('torch._utils', '_rebuild_tensor_v2', [1, 2]) })), /_rebuild_tensor_v2 takes 6 to 7 arguments, got 2/);
  });

  it('bounds: storages larger than their data, views past the end, huge lengths, expansion bombs', () => {
    const storage = { key: '0', dtype: 'float32' as const, bytes: f32(1, 2, 3, 4) };
    expectFileError(() => parsePth(zipPth(new Map([['v', new TensorSpec(storage, 2, [2, 2], [2, 1])]]))), /reaches element 5 of storage "0", which holds 4 float32 elements/);
    expectFileError(() => parsePth(legacyPth(new Map([['v', new TensorSpec(storage, 4, [1], [1])]]))), /reaches element 4/);
    // The pickle declares 10^9 elements for a 16-byte entry (or legacy data block).
    const lying = new Map([['v', new TensorSpec({ ...storage, numel: 1e9 }, 0, [4], [1])]]);
    expectFileError(() => parsePth(zipPth(lying)), /storage "0" declares 1000000000 float32 elements \(4000000000 bytes\) but archive\/data\/0 holds 16 bytes/);
    expectFileError(() => parsePth(legacyPth(lying)), /storage "0" needs 4000000000 bytes at \d+ but the file ends at/);
    const huge = zipArchive([['archive/data.pkl', new Uint8Array([0x80, 2, 0x58, 0xf0, 0xff, 0xff, 0xff, 0x61, 0x2e])]]);
    expectFileError(() => parsePth(huge), /BINUNICODE needs 4294967280 bytes but only 2 remain/);
    const bomb = new Map(Array.from({ length: 4 }, (_, i): [string, TensorSpec] => [`w${i}`, new TensorSpec(storage, 0, [1 << 20, 1 << 10], [0, 0])]));
    expectFileError(() => parsePth(zipPth(bomb)), /would take 17179869184 bytes, more than 8 times the file's/);
  });

  it('runs 200,000 levels of nesting without recursion', () => {
    const n = 200_000;
    const deep = new Uint8Array(2 + 2 * n);
    deep.set([0x80, 2]);
    deep.fill(0x5d, 2, 2 + n);
    deep.fill(0x61, 2 + n, 1 + 2 * n);
    deep[1 + 2 * n] = 0x2e;
    expectFileError(() => parsePth(zipArchive([['a/data.pkl', deep]])), /holds a list of 1, not a state_dict/);
  });

  it('names what other files are: TorchScript, the pre-1.0 tar format, anything else', () => {
    expectFileError(() => parsePth(zipArchive([['m/constants.pkl', pickle(1)], ['m/data.pkl', pickle({})]])), /TorchScript archive \(torch\.jit\.save\)/);
    const tar = new Uint8Array(1024);
    tar.set(new TextEncoder().encode('ustar'), 257);
    expectFileError(() => parsePth(tar), /tar-format PyTorch file \(PyTorch < 1\.0\)/);
    expectFileError(() => parsePth(new TextEncoder().encode('hello')), /not a PyTorch checkpoint/);
    expectFileError(() => parsePth(zipArchive([['readme.txt', new Uint8Array(3)]])), /no <name>\/data\.pkl.*readme\.txt/);
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: any input either parses or is a TensorFileError (never another error, a hang, or a huge allocation).
// ---------------------------------------------------------------------------------------------

function parsesOrFileError(bytes: Uint8Array): void {
  try {
    parsePth(bytes, { file: 'fuzz.pth' });
  } catch (e) {
    if (!(e instanceof TensorFileError)) throw e;
  }
}

/** Opcodes the reader knows, with plausible operands; and any byte at all. */
const opcodeArb: fc.Arbitrary<number[]> = fc.oneof(
  fc.constantFrom(...[0x2e, 0x28, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x29, 0x85, 0x86, 0x87, 0x74, 0x5d, 0x6c, 0x61, 0x65, 0x7d, 0x64, 0x73, 0x75, 0x8f, 0x90, 0x91, 0x52, 0x81, 0x62, 0x51, 0x93, 0x94].map((c) => [c])),
  fc.tuple(fc.constantFrom(0x4b, 0x71, 0x68, 0x8a, 0x8c, 0x43, 0x55), fc.nat({ max: 8 })).map(([c, n]) => [c, n]),
  fc.tuple(fc.constantFrom(0x4a, 0x4d, 0x58, 0x42, 0x72, 0x6a, 0x8b), fc.uint8Array({ minLength: 4, maxLength: 4 })).map(([c, b]) => [c, ...b]),
  fc.constantFrom(
    ...[
      ['collections', 'OrderedDict'],
      ['torch._utils', '_rebuild_tensor_v2'],
      ['torch._utils', '_rebuild_parameter'],
      ['torch', 'FloatStorage'],
      ['torch', 'Size'],
      ['argparse', 'Namespace'],
      ['os', 'system'],
    ].map(([m, n]) => [0x63, ...new TextEncoder().encode(`${m}\n${n}\n`)]),
  ),
  fc.nat({ max: 255 }).map((b) => [b]),
);
const streamArb = fc.array(opcodeArb, { maxLength: 40 }).map((ops) => new Uint8Array([0x80, 2, ...ops.flat()]));

describe('parsePth fuzzing', () => {
  const sd = new Map([
    ['a', contiguous('0', 'float32', [2, 2], f32(1, 2, 3, 4))],
    ['b', new TensorSpec({ key: '1', dtype: 'float16', bytes: new Uint8Array(12) }, 1, [2, 2], [1, 2])],
  ]);
  const ckpt = { epoch: 1, state_dict: sd };
  const seeds = [zipPth(sd), zipPth(ckpt, { deflate: true }), zipPth(sd, { zip64: true }), legacyPth(sd), legacyPth(ckpt)];

  test.prop([fc.constantFrom(...seeds.keys()), fc.array(mutationArb, { minLength: 1, maxLength: 4 })], { numRuns: 2000 })(
    'mutated and truncated files (zip, deflated, zip64, legacy) parse or are TensorFileErrors',
    (seed, muts) => parsesOrFileError(mutate(seeds[seed]!, muts)),
  );

  test.prop([streamArb, fc.boolean()], { numRuns: 1500 })('random opcode streams, as a zip data.pkl or a legacy object pickle', (stream, legacy) => {
    if (legacy) {
      const parts = [pickle(0x1950a86a20f9469cfc6cn), pickle(1001), pickle({}), stream, pickle([])];
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) (bytes.set(p, at), (at += p.length));
      parsesOrFileError(bytes);
    } else parsesOrFileError(zipArchive([['a/data.pkl', stream], ['a/data/0', new Uint8Array(16)]]));
  });

  test.prop([streamArb], { numRuns: 1000 })('the pickle machine alone returns or throws PickleError', (stream) => {
    try {
      runPickle(stream, 0, { resolveGlobal: () => undefined, persistentLoad: () => null });
    } catch (e) {
      if (!(e instanceof PickleError)) throw e;
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('readWeightFile: one entry point, told apart by content', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-pth-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const t: Tensor = { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) };

  it('reads safetensors and .pth whatever the extension, and describes them', async () => {
    writeFileSync(join(dir, 'w.bin'), serializeSafetensors(new Map([['x', t]]), { a: 'b' }));
    writeFileSync(join(dir, 'w.safetensors'), zipPth({ model: new Map([['module.x', contiguous('0', 'float32', [2], f32(1, 2))]]) }));
    const st = await readWeightFile(join(dir, 'w.bin'));
    expect(st).toMatchObject({ format: 'safetensors', key: null, metadata: { a: 'b' }, description: 'safetensors, 1 tensors' });
    const pth = await readWeightFile(join(dir, 'w.safetensors'));
    expect(pth).toMatchObject({ format: 'pth', container: 'zip', key: 'model', strippedPrefix: 'module.', description: 'PyTorch checkpoint (zip), entry "model", prefix "module." removed, 1 tensors' });
    expect(Array.from(pth.tensors.get('x')!.data as Float32Array)).toEqual([1, 2]);
    expect((await readPth(join(dir, 'w.safetensors'), { weightsKey: 'model' })).key).toBe('model');
  });

  it('names the other kinds of file, and a weights key for a file that has none', async () => {
    expect(sniffWeightFile(serializeNpy(t))).toBe('npy');
    expectFileError(() => parseWeightFile(serializeNpy(t), { file: 'a.npy' }), /^a\.npy: is a NumPy \.npy array, not named weights/);
    expectFileError(() => parseWeightFile(new Uint8Array([0x89, 0x48, 0x44, 0x46, 13, 10, 26, 10]), { file: 'k.h5' }), /HDF5 file \(Keras \.h5\)/);
    expectFileError(() => parseWeightFile(new TextEncoder().encode('<html>not found</html>'), { file: 'x' }), /neither safetensors nor a PyTorch checkpoint/);
    expectFileError(() => parseWeightFile(serializeSafetensors(new Map([['x', t]])), { file: 's', weightsKey: 'model' }), /safetensors file, which holds one set of weights; drop the weights key "model"/);
    await expect(readWeightFile(join(dir, 'missing.pth'))).rejects.toThrow(/missing\.pth: cannot read the file/);
  });
});

// ---------------------------------------------------------------------------------------------

describeWithPeers(['torch', 'numpy'], 'files written by torch.save itself (PyTorch 1.13)', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'effnet-pth-peer-'));
    runPython('scripts/make_pth.py', ['--out', dir]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Compares a TensorMap with Python's expected/ directory, bit for bit. */
  function expectSame(tensors: Map<string, Tensor>, expectedDir: string) {
    const manifest = JSON.parse(readFileSync(join(expectedDir, 'manifest.json'), 'utf8')) as Record<string, { dtype: string; shape: number[] }>;
    expect([...tensors.keys()]).toEqual(Object.keys(manifest));
    for (const [name, m] of Object.entries(manifest)) {
      const t = tensors.get(name)!;
      expect({ name, dtype: t.dtype, shape: t.shape }).toEqual({ name, ...m });
      expect(Buffer.from(rawBytes(t)).equals(readFileSync(join(expectedDir, `${name}.bin`))), name).toBe(true);
    }
  }

  it.each(['zip', 'legacy'])('every dtype, views, shared storages and parameters (%s format) equal what Python wrote', async (format) => {
    const r = await readPth(join(dir, `dtypes.${format}.pth`));
    expect(r.format).toBe(format);
    expectSame(r.tensors, join(dir, 'expected'));
  });

  it('training checkpoints: the state_dict beside optimizer state, a Namespace, numpy scalars and bytes; EMA first', async () => {
    const ck = await readPth(join(dir, 'checkpoint.zip.pth'));
    expect(ck.key).toBe('state_dict');
    expectSame(ck.tensors, join(dir, 'small', 'a'));
    const ema = await readPth(join(dir, 'ema.zip.pth'));
    expect(ema.key).toBe('state_dict_ema');
    expectSame(ema.tensors, join(dir, 'small', 'b'));
    expectSame((await readPth(join(dir, 'ema.zip.pth'), { weightsKey: 'state_dict' })).tensors, join(dir, 'small', 'a'));
    await expect(readPth(join(dir, 'ambiguous.zip.pth'))).rejects.toThrow(/several entries hold weights \("first", "second"\)/);
    const dp = await readPth(join(dir, 'module.legacy.pth'));
    expect(dp).toMatchObject({ format: 'legacy', strippedPrefix: 'module.' });
    expectSame(dp.tensors, join(dir, 'small', 'a'));
    await expect(readPth(join(dir, 'tensor.zip.pth'))).rejects.toThrow(/not a lone tensor/);
  });

  it('hostile pickles are refused naming their global, and their payloads never run (though torch.load does run them)', async () => {
    const { cases, proven } = JSON.parse(readFileSync(join(dir, 'hostile.json'), 'utf8')) as {
      cases: Record<string, { file: string; global: string | null; marker: string | null; error?: string }>;
      proven: Record<string, boolean>;
    };
    expect(proven).toEqual({ os_system: true, builtins_eval: true, subprocess_popen: true, builtins_exec: true });
    expect(Object.keys(cases).length).toBe(17);
    for (const [name, rel] of Object.entries(cases)) {
      const c = { ...rel, file: join(dir, rel.file), marker: rel.marker && join(dir, rel.marker) };
      const err = await readPth(c.file).then(
        () => new Error(`${name} parsed`),
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(TensorFileError);
      const msg = (err as Error).message;
      expect(msg.startsWith(`${c.file}: `), name).toBe(true);
      if (c.global) expect(msg, name).toContain(`refuses the global "${c.global}"`);
      if (c.error) expect(msg, name).toContain(c.error);
      if (c.marker) expect(existsSync(c.marker), `${name}: ${c.marker}`).toBe(false);
    }
  });
});
