/**
 * Writes PyTorch checkpoints the way torch.save lays them out (zip or legacy), for tests that must run without
 * Python: property tests over dtypes and views, fuzzing seeds, hand-made hostile pickles. The peer tests check the
 * reader against files torch.save itself wrote (scripts/make_pth.py); this writer only has to produce valid input.
 */
import { deflateRawSync } from 'node:zlib';
import type { TensorMap } from '../src/tensor.js';

// ---------------------------------------------------------------------------------------------
// Pickle opcodes
// ---------------------------------------------------------------------------------------------

/** A pickle opcode stream under construction. */
export class Pickler {
  private readonly chunks: number[] = [];

  bytes(...b: (number | Uint8Array | readonly number[])[]): this {
    for (const x of b) {
      if (typeof x === 'number') this.chunks.push(x);
      else for (const y of x) this.chunks.push(y);
    }
    return this;
  }
  proto(n = 2): this {
    return this.bytes(0x80, n);
  }
  stop(): this {
    return this.bytes(0x2e);
  }
  mark(): this {
    return this.bytes(0x28);
  }
  none(): this {
    return this.bytes(0x4e);
  }
  bool(v: boolean): this {
    return this.bytes(v ? 0x88 : 0x89);
  }
  int(n: number | bigint): this {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 256) return this.bytes(0x4b, n);
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 65536) return this.bytes(0x4d, n & 0xff, n >> 8);
    if (typeof n === 'number' && Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) return this.bytes(0x4a, le32(n));
    // LONG1: little-endian two's complement, as short as the value allows.
    let v = BigInt(n);
    const out: number[] = [];
    for (;;) {
      out.push(Number(v & 0xffn));
      v >>= 8n;
      if ((v === 0n && !(out.at(-1)! & 0x80)) || (v === -1n && out.at(-1)! & 0x80)) break;
    }
    return this.bytes(0x8a, out.length, out);
  }
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.bytes(0x47, b);
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return b.length < 256 ? this.bytes(0x8c, b.length, b) : this.bytes(0x58, le32(b.length), b);
  }
  binbytes(b: Uint8Array): this {
    return this.bytes(0x42, le32(b.length), b);
  }
  global(module: string, name: string): this {
    return this.bytes(0x63, new TextEncoder().encode(`${module}\n${name}\n`));
  }
  emptyTuple(): this {
    return this.bytes(0x29);
  }
  tuple(): this {
    return this.bytes(0x74);
  }
  emptyList(): this {
    return this.bytes(0x5d);
  }
  appends(): this {
    return this.bytes(0x65);
  }
  emptyDict(): this {
    return this.bytes(0x7d);
  }
  setitems(): this {
    return this.bytes(0x75);
  }
  reduce(): this {
    return this.bytes(0x52);
  }
  newobj(): this {
    return this.bytes(0x81);
  }
  build(): this {
    return this.bytes(0x62);
  }
  binpersid(): this {
    return this.bytes(0x51);
  }
  binput(i: number): this {
    return this.bytes(0x71, i);
  }
  binget(i: number): this {
    return this.bytes(0x68, i);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

function le64(n: number | bigint): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
  return [...b];
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/** torch dtype name -> [storage class, item size]. */
export const STORAGE_OF = {
  float32: ['FloatStorage', 4],
  float64: ['DoubleStorage', 8],
  float16: ['HalfStorage', 2],
  bfloat16: ['BFloat16Storage', 2],
  int64: ['LongStorage', 8],
  int32: ['IntStorage', 4],
  uint8: ['ByteStorage', 1],
  bool: ['BoolStorage', 1],
  int16: ['ShortStorage', 2],
} as const;
export type TorchDTypeName = keyof typeof STORAGE_OF;

/** A storage: raw little-endian bytes of `numel` elements. */
export interface StorageSpec {
  key: string;
  dtype: TorchDTypeName;
  bytes: Uint8Array;
  /** The element count the file declares (default: what the bytes hold); a lie, for tests of the bounds. */
  numel?: number;
}

/** A tensor as torch.save writes it: a view of a storage. */
export class TensorSpec {
  constructor(
    readonly storage: StorageSpec,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    /** Wrap in torch._utils._rebuild_parameter (an nn.Parameter). */
    readonly parameter = false,
  ) {}
}

/** A tuple (JS arrays are lists). */
export class Tuple {
  constructor(readonly items: unknown[]) {}
}

/** An instance built by REDUCE of a global with arguments (e.g. a hostile os.system call). */
export class Reduce {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: unknown[],
  ) {}
}

/** Opcodes spliced in as they are. */
export class Raw {
  constructor(readonly bytes: Uint8Array) {}
}

/** A C-contiguous tensor over its own storage. */
export function contiguous(key: string, dtype: TorchDTypeName, shape: number[], bytes: Uint8Array): TensorSpec {
  const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return new TensorSpec({ key, dtype, bytes }, 0, shape, stride);
}

/** A TensorMap as a state_dict of contiguous tensors, one storage each (keys "0", "1"...), names prefixed. */
export function stateDictOf(tensors: TensorMap, prefix = '', firstKey = 0): Map<string, TensorSpec> {
  return new Map(
    [...tensors].map(([name, t], i) => {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
      return [prefix + name, contiguous(String(firstKey + i), t.dtype, t.shape, bytes)];
    }),
  );
}

/** Encodes a value: null, boolean, number (integers as ints), bigint, string, Uint8Array (bytes), arrays (lists),
 * Tuple, Map (an OrderedDict), plain objects (dicts), TensorSpec, Reduce, Raw. */
export function pickleValue(p: Pickler, v: unknown, legacy: boolean): void {
  if (v === null || v === undefined) p.none();
  else if (typeof v === 'boolean') p.bool(v);
  else if (typeof v === 'bigint') p.int(v);
  else if (typeof v === 'number') {
    if (Number.isInteger(v)) p.int(v);
    else p.float(v);
  } else if (typeof v === 'string') p.str(v);
  else if (v instanceof Uint8Array) p.binbytes(v);
  else if (v instanceof Raw) p.bytes(v.bytes);
  else if (v instanceof Tuple) {
    p.mark();
    for (const x of v.items) pickleValue(p, x, legacy);
    p.tuple();
  } else if (Array.isArray(v)) {
    p.emptyList();
    if (v.length) {
      p.mark();
      for (const x of v) pickleValue(p, x, legacy);
      p.appends();
    }
  } else if (v instanceof Map) {
    p.global('collections', 'OrderedDict').emptyTuple().reduce();
    setItems(p, [...v], legacy);
  } else if (v instanceof TensorSpec) pickleTensor(p, v, legacy);
  else if (v instanceof Reduce) {
    p.global(v.module, v.name);
    pickleValue(p, new Tuple(v.args), legacy);
    p.reduce();
  } else if (typeof v === 'object') {
    p.emptyDict();
    setItems(p, Object.entries(v), legacy);
  } else throw new Error(`cannot pickle ${typeof v}`);
}

function setItems(p: Pickler, entries: [unknown, unknown][], legacy: boolean): void {
  if (!entries.length) return;
  p.mark();
  for (const [k, x] of entries) {
    pickleValue(p, k, legacy);
    pickleValue(p, x, legacy);
  }
  p.setitems();
}

function pickleTensor(p: Pickler, t: TensorSpec, legacy: boolean): void {
  const [cls, size] = STORAGE_OF[t.storage.dtype];
  // _rebuild_parameter(data, requires_grad, backward_hooks) around _rebuild_tensor_v2(storage, offset, size, stride,
  // requires_grad, backward_hooks), as torch pickles an nn.Parameter.
  if (t.parameter) p.global('torch._utils', '_rebuild_parameter').mark();
  p.global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().str('storage').global('torch', cls).str(t.storage.key).str('cpu').int(t.storage.numel ?? t.storage.bytes.length / size);
  if (legacy) p.none();
  p.tuple().binpersid();
  p.int(t.offset);
  pickleValue(p, new Tuple(t.shape), legacy);
  pickleValue(p, new Tuple(t.stride), legacy);
  p.bool(false);
  p.global('collections', 'OrderedDict').emptyTuple().reduce();
  p.tuple().reduce();
  if (t.parameter) p.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
}

/** The storages a value refers to, by key, in first-use order. */
export function storagesOf(v: unknown, out = new Map<string, StorageSpec>()): Map<string, StorageSpec> {
  if (v instanceof TensorSpec) {
    if (!out.has(v.storage.key)) out.set(v.storage.key, v.storage);
  } else if (v instanceof Tuple) v.items.forEach((x) => storagesOf(x, out));
  else if (v instanceof Reduce) v.args.forEach((x) => storagesOf(x, out));
  else if (Array.isArray(v)) v.forEach((x) => storagesOf(x, out));
  else if (v instanceof Map) for (const [k, x] of v) (storagesOf(k, out), storagesOf(x, out));
  else if (v && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Raw)) Object.values(v).forEach((x) => storagesOf(x, out));
  return out;
}

/** One pickle of `v`: PROTO 2 ... STOP. */
export function pickle(v: unknown, legacy = false): Uint8Array {
  const p = new Pickler().proto(2);
  pickleValue(p, v, legacy);
  return p.stop().done();
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

export interface ZipOptions {
  /** Archive prefix (torch uses the file's base name, newer versions "archive"). */
  prefix?: string;
  /** DEFLATE every entry (torch.save never does; an archive re-zipped by another tool might). */
  deflate?: boolean;
  /** Write ZIP64 end records and extra fields (as for archives over 4 GB). */
  zip64?: boolean;
  /** Contents of <prefix>/byteorder, when given. */
  byteorder?: string;
}

/** A zip archive of named files, stored (or deflated), with torch's 64-byte alignment of entry data. */
export function zipArchive(files: [string, Uint8Array][], o: Pick<ZipOptions, 'deflate' | 'zip64'> = {}): Uint8Array {
  const out: number[] = [];
  const central: number[] = [];
  const enc = new TextEncoder();
  for (const [name, data] of files) {
    const nameBytes = enc.encode(name);
    const body = o.deflate ? deflateRawSync(data) : data;
    const offset = out.length;
    // Pad the local extra field so that the data start is 64-byte aligned, as torch's writer does.
    const pad = (64 - ((offset + 30 + nameBytes.length + 4) % 64)) % 64;
    const localExtra = [0x46, 0x42, pad & 0xff, pad >> 8, ...new Array(pad).fill(0x5a)];
    out.push(...le32(0x04034b50), 20, 0, 0, 0, o.deflate ? 8 : 0, 0, 0, 0, 0, 0, ...le32(0), ...le32(body.length), ...le32(data.length));
    out.push(nameBytes.length & 0xff, nameBytes.length >> 8, localExtra.length & 0xff, localExtra.length >> 8, ...nameBytes, ...localExtra);
    for (const b of body) out.push(b);
    const extra = o.zip64 ? [0x01, 0x00, 24, 0, ...le64(data.length), ...le64(body.length), ...le64(offset)] : [];
    const f32 = (n: number) => (o.zip64 ? le32(0xffffffff) : le32(n));
    central.push(...le32(0x02014b50), 45, 0, 45, 0, 0, 0, o.deflate ? 8 : 0, 0, 0, 0, 0, 0, ...le32(0), ...f32(body.length), ...f32(data.length));
    central.push(nameBytes.length & 0xff, nameBytes.length >> 8, extra.length & 0xff, extra.length >> 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...f32(offset), ...nameBytes, ...extra);
  }
  const cdOffset = out.length;
  out.push(...central);
  const n = files.length;
  if (o.zip64) {
    const eocd64 = out.length;
    out.push(...le32(0x06064b50), ...le64(44), 45, 0, 45, 0, ...le32(0), ...le32(0), ...le64(n), ...le64(n), ...le64(central.length), ...le64(cdOffset));
    out.push(...le32(0x07064b50), ...le32(0), ...le64(eocd64), ...le32(1));
    out.push(...le32(0x06054b50), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, ...le32(0xffffffff), ...le32(0xffffffff), 0, 0);
  } else out.push(...le32(0x06054b50), 0, 0, 0, 0, n & 0xff, n >> 8, n & 0xff, n >> 8, ...le32(central.length), ...le32(cdOffset), 0, 0);
  return Uint8Array.from(out);
}

/** torch.save's zip format for a value (a state_dict, a checkpoint dict...). */
export function zipPth(v: unknown, o: ZipOptions = {}): Uint8Array {
  const prefix = o.prefix ?? 'archive';
  const files: [string, Uint8Array][] = [[`${prefix}/data.pkl`, pickle(v)]];
  if (o.byteorder !== undefined) files.push([`${prefix}/byteorder`, new TextEncoder().encode(o.byteorder)]);
  for (const [key, s] of storagesOf(v)) files.push([`${prefix}/data/${key}`, s.bytes]);
  files.push([`${prefix}/version`, new TextEncoder().encode('3\n')]);
  return zipArchive(files, o);
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** torch.save's legacy format (_use_new_zipfile_serialization=False) for a value. */
export function legacyPth(v: unknown): Uint8Array {
  const storages = [...storagesOf(v).values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const parts: (Uint8Array | number[])[] = [
    pickle(LEGACY_MAGIC),
    pickle(1001),
    pickle({ protocol_version: 1001, little_endian: true, type_sizes: { short: 2, int: 4, long: 4 } }),
    pickle(v, true),
    pickle(storages.map((s) => s.key)),
  ];
  for (const s of storages) parts.push(le64(s.numel ?? s.bytes.length / STORAGE_OF[s.dtype][1]), s.bytes);
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
