/**
 * PyTorch checkpoints (`.pth`, `.pt`, `.bin`) as `torch.save` writes them, read without Python and without running
 * anything from the file.
 *
 * Why effnet reads the containers itself: core may import nothing but the Node standard library (it has no runtime
 * dependencies), which rules out yauzl/fflate for the zip and pickleparser for the pickle. pickleparser would also
 * be the wrong tool: it turns any class name into a generic object instead of refusing it, and what keeps a
 * malicious pickle harmless here is that only an allow-list of globals is ever resolved. torch.save writes a narrow
 * subset of both formats (STORED zip entries, the binary pickle opcodes), so the readers are small: zip.ts reads the
 * archive's directory, pickle.ts runs a pickle on an allow-list, and this file is the PyTorch-specific part.
 *
 * Formats:
 * - zip (PyTorch >= 1.6, the default): `<prefix>/data.pkl` is the pickled object, whose tensors point by persistent id
 *   `('storage', StorageType, key, location, numel)` to raw storages `<prefix>/data/<key>`; `<prefix>/byteorder`
 *   ('little' or 'big', written since PyTorch 2.1; little when absent) says how those bytes are ordered.
 * - legacy (`_use_new_zipfile_serialization=False`): pickles in a row: the magic number, protocol version 1001, a
 *   sys_info dict, the object (persistent ids `('storage', StorageType, root_key, location, numel, view_metadata)`),
 *   the sorted list of storage keys; then, in that order, each storage as an int64 element count and its bytes,
 *   always little-endian. (The pre-1.0 tar format is refused with a message.)
 *
 * Safe by construction, like `torch.load(weights_only=True)`: the only globals resolved are tensor rebuilders
 * (`torch._utils._rebuild_tensor_v2` and kin, `torch.nn.Parameter`), storage and dtype names, `torch.Size`,
 * `torch.device`, `collections.OrderedDict`, `builtins.set/frozenset` and `_codecs.encode` (how protocol 2 writes
 * bytes), each implemented here in TypeScript. Any other global (`os.system`, `builtins.eval`, `subprocess.Popen`,
 * a model class...) stops parsing with a TensorFileError naming it, before anything else is done.
 * Decision on training checkpoints: timm's train script saves `args` as an `argparse.Namespace`, and metrics are often
 * numpy scalars. weights_only=True refuses those; effnet accepts a few such *data* classes (argparse.Namespace,
 * types.SimpleNamespace, numpy scalars, dtypes and arrays) as inert records: their arguments and state are kept as
 * plain values and nothing of theirs is ever called or interpreted, so a checkpoint's weights can be read beside them.
 *
 * Bounds: zip offsets and pickle lengths are checked against the file; a storage's numel times its item size must fit
 * in its data; a tensor's offset, sizes and strides must stay inside its storage; the tensors read may total at most
 * {@link MAX_MATERIALIZED_RATIO} times the file's size (shared storages and stride-0 views can multiply bytes).
 *
 * Which dict holds the weights: the top-level object when it is a dict of tensors (a state_dict); otherwise, in a
 * training checkpoint, the first of {@link CHECKPOINT_KEYS} that holds a dict of tensors (timm's `load_checkpoint`
 * order, EMA weights first, then common names); otherwise the only entry that holds one. `weightsKey` chooses
 * explicitly. A prefix every name shares from a wrapper (`module.` from DataParallel/DDP, `_orig_mod.` from
 * torch.compile) is removed, as timm's `clean_state_dict` does, and reported.
 */
import { TensorFileError } from '../errors.js';
import type { DType, Tensor, TensorMap } from '../tensor.js';
import { swapBytesInPlace, typedArrayOnLE } from './bytes.js';
import { readFileBytes } from './files.js';
import { isPyGlobal, PickleError, type PickleEnvironment, PyDict, type PyGlobal, pyTypeName, runPickle } from './pickle.js';
import { loadInflate, looksLikeZip, readZipDirectory, type ZipDirectory, zipEntryBytes } from './zip.js';

/** Options for {@link parsePth} and {@link readPth}. */
export interface PthOptions {
  /** Name used in error messages (readPth: the path). */
  file?: string;
  /** The checkpoint entry that holds the weights (e.g. 'state_dict', 'model'); default: found automatically. */
  weightsKey?: string;
}

/** What a .pth file holds. */
export interface PthContents {
  /** The weights, in the order the file lists them, data copied into fresh aligned arrays (bool as uint8). */
  tensors: TensorMap;
  /** The checkpoint entry the weights came from ('state_dict', 'model', ...); null when the file is a state_dict. */
  key: string | null;
  format: 'zip' | 'legacy';
  /** The wrapper prefix removed from every name ('module.'), or null. */
  strippedPrefix: string | null;
  /** Top-level entries that hold dicts of tensors: what `weightsKey` may name (empty for a plain state_dict). */
  weightKeys: string[];
}

/** Entries of a training checkpoint searched for the weights, in this order (timm's load_checkpoint first). */
export const CHECKPOINT_KEYS: readonly string[] = [
  'state_dict_ema',
  'model_ema',
  'state_dict',
  'model',
  'model_state_dict',
  'ema',
  'module',
  'net',
  'network',
  'weights',
  'params',
];

/** Prefixes wrappers put before every name (timm's clean_state_dict removes the same ones). */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];

/** The tensors read may total at most this many times the file's size. */
export const MAX_MATERIALIZED_RATIO = 8;

/** Most dimensions a tensor may have (PyTorch allows 64 too). */
const MAX_DIMS = 64;

/** The magic number that starts a legacy torch.save file (a pickled int). */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

// ---------------------------------------------------------------------------------------------
// PyTorch types
// ---------------------------------------------------------------------------------------------

/** A torch dtype: its item size and the effnet DType it becomes (null: effnet does not read it). */
interface TorchDType {
  name: string;
  itemSize: number;
  dtype: DType | null;
}

const TORCH_DTYPES = new Map<string, TorchDType>(
  (
    [
      ['float32', 4, 'float32'],
      ['float64', 8, 'float64'],
      ['float16', 2, 'float16'],
      ['bfloat16', 2, 'bfloat16'],
      ['int64', 8, 'int64'],
      ['int32', 4, 'int32'],
      ['uint8', 1, 'uint8'],
      ['bool', 1, 'uint8'],
      ['int16', 2, null],
      ['int8', 1, null],
      ['complex32', 4, null],
      ['complex64', 8, null],
      ['complex128', 16, null],
      ['qint8', 1, null],
      ['quint8', 1, null],
      ['qint32', 4, null],
      ['quint4x2', 1, null],
      ['quint2x4', 1, null],
    ] as const
  ).map(([name, itemSize, dtype]) => [name, { name, itemSize, dtype }]),
);

/** `torch.<Name>Storage` -> dtype name. */
const STORAGE_DTYPES: [string, string][] = [
  ['FloatStorage', 'float32'],
  ['DoubleStorage', 'float64'],
  ['HalfStorage', 'float16'],
  ['BFloat16Storage', 'bfloat16'],
  ['LongStorage', 'int64'],
  ['IntStorage', 'int32'],
  ['ByteStorage', 'uint8'],
  ['BoolStorage', 'bool'],
  ['ShortStorage', 'int16'],
  ['CharStorage', 'int8'],
  ['ComplexFloatStorage', 'complex64'],
  ['ComplexDoubleStorage', 'complex128'],
  ['QInt8Storage', 'qint8'],
  ['QUInt8Storage', 'quint8'],
  ['QInt32Storage', 'qint32'],
  ['QUInt4x2Storage', 'quint4x2'],
  ['QUInt2x4Storage', 'quint2x4'],
];

/** `torch.<attr>` names of dtypes (a pickled dtype is the global `torch.float32`, `torch.half`...). */
const DTYPE_ATTRS: [string, string][] = [
  ...[...TORCH_DTYPES.keys()].map((n): [string, string] => [n, n]),
  ['float', 'float32'],
  ['double', 'float64'],
  ['half', 'float16'],
  ['long', 'int64'],
  ['int', 'int32'],
  ['short', 'int16'],
  ['cfloat', 'complex64'],
  ['cdouble', 'complex128'],
  ['chalf', 'complex32'],
];

/** A storage class named in a persistent id; untyped storages count bytes. */
interface StorageTypeGlobal extends PyGlobal {
  storageDType: TorchDType;
  untyped: boolean;
}

interface DTypeGlobal extends PyGlobal {
  torchDType: TorchDType;
}

/** A storage's bytes, found when first needed (zip: the entry; legacy: the data after the pickles). */
class Storage {
  readonly pyType = 'torch.Storage';
  private bytes?: Uint8Array;
  constructor(
    readonly key: string,
    readonly dtype: TorchDType,
    readonly nbytes: number,
    private source?: () => Uint8Array | undefined,
  ) {}

  setData(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.source = undefined;
  }

  get hasData(): boolean {
    return this.bytes !== undefined || this.source !== undefined;
  }

  data(): Uint8Array | undefined {
    if (!this.bytes && this.source) this.bytes = this.source();
    return this.bytes;
  }
}

/** A tensor as the file describes it: a strided view of a storage, read only when chosen. */
class PthTensor {
  readonly pyType = 'torch.Tensor';
  constructor(
    readonly storage: Storage,
    readonly dtype: TorchDType,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly numel: number,
  ) {}
}

/** An instance of an inert data class (argparse.Namespace, numpy scalars...): kept, never interpreted. */
class InertObject {
  state: unknown;
  constructor(
    readonly pyType: string,
    readonly args: readonly unknown[],
  ) {}
  build(state: unknown): void {
    this.state = state;
  }
}

const argFail = (reason: string): never => {
  throw new PickleError(reason, -1);
};

const isNatural = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function naturals(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_DIMS || !v.every(isNatural)) {
    return argFail(`${what} must be a tuple of at most ${MAX_DIMS} non-negative integers, got ${describeValue(v)}`);
  }
  return [...(v as number[])];
}

/** A tensor view, checked to lie inside its storage. */
function makeTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown, dtype?: TorchDType): PthTensor {
  if (!(storage instanceof Storage)) return argFail(`expected a storage, got a ${pyTypeName(storage)}`);
  const t = dtype ?? storage.dtype;
  if (!isNatural(offset)) return argFail(`storage offset must be a non-negative integer, got ${describeValue(offset)}`);
  const shape = naturals(size, 'size');
  const strides = naturals(stride, 'stride');
  if (shape.length !== strides.length) argFail(`size (${shape.length} dims) and stride (${strides.length} dims) differ in length`);
  let numel = 1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    numel *= shape[i]!;
    if (shape[i]! > 0) last += (shape[i]! - 1) * strides[i]!;
  }
  const storageElements = Math.floor(storage.nbytes / t.itemSize);
  const inside = numel === 0 ? offset <= storageElements : Number.isSafeInteger(last) && last < storageElements;
  if (!inside || !Number.isSafeInteger(numel)) {
    return argFail(
      `a tensor of size [${shape.join(', ')}], stride [${strides.join(', ')}] at offset ${offset} reaches element ${last} of storage ` +
        `"${storage.key}", which holds ${storageElements} ${t.name} elements; the file is corrupt`,
    );
  }
  return new PthTensor(storage, t, offset, shape, strides, numel);
}

function asTensor(v: unknown): PthTensor {
  return v instanceof PthTensor ? v : argFail(`expected a tensor, got a ${pyTypeName(v)}`);
}

function allowed(qualifiedName: string, call?: (args: readonly unknown[]) => unknown, construct?: (args: readonly unknown[]) => unknown): PyGlobal {
  return { kind: 'global', qualifiedName, call, construct };
}

function arity(args: readonly unknown[], min: number, max: number, what: string): void {
  if (args.length < min || args.length > max) argFail(`${what} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`);
}

function orderedDict(args: readonly unknown[]): PyDict {
  arity(args, 0, 1, 'OrderedDict');
  const d = new PyDict();
  if (args.length === 1) {
    const pairs = args[0];
    if (!Array.isArray(pairs)) return argFail(`OrderedDict takes a list of pairs, got a ${pyTypeName(pairs)}`);
    for (const p of pairs) {
      if (!Array.isArray(p) || p.length !== 2) return argFail(`OrderedDict takes (key, value) pairs, got ${describeValue(p)}`);
      d.set(p[0], p[1]);
    }
  }
  return d;
}

function inert(qualifiedName: string): PyGlobal {
  const make = (args: readonly unknown[]) => new InertObject(qualifiedName, [...args]);
  return allowed(qualifiedName, make, make);
}

/** The allow-list: every global a .pth file may name, each implemented here. */
const ALLOWED_GLOBALS: ReadonlyMap<string, PyGlobal> = (() => {
  const m = new Map<string, PyGlobal>();
  const add = (g: PyGlobal) => m.set(g.qualifiedName, g);
  add(allowed('collections.OrderedDict', orderedDict, orderedDict));
  add(
    allowed('torch._utils._rebuild_tensor', (a) => {
      arity(a, 4, 4, '_rebuild_tensor');
      return makeTensor(a[0], a[1], a[2], a[3]);
    }),
  );
  add(
    allowed('torch._utils._rebuild_tensor_v2', (a) => {
      arity(a, 6, 7, '_rebuild_tensor_v2');
      return makeTensor(a[0], a[1], a[2], a[3]);
    }),
  );
  add(
    allowed('torch._utils._rebuild_tensor_v3', (a) => {
      arity(a, 7, 8, '_rebuild_tensor_v3');
      const dt = a[6];
      if (!isPyGlobal(dt) || !(dt as DTypeGlobal).torchDType) return argFail(`expects a dtype as its 7th argument, got a ${pyTypeName(dt)}`);
      return makeTensor(a[0], a[1], a[2], a[3], (dt as DTypeGlobal).torchDType);
    }),
  );
  add(
    allowed('torch._utils._rebuild_parameter', (a) => {
      arity(a, 3, 3, '_rebuild_parameter');
      return asTensor(a[0]);
    }),
  );
  add(
    allowed('torch._utils._rebuild_parameter_with_state', (a) => {
      arity(a, 4, 4, '_rebuild_parameter_with_state');
      return asTensor(a[0]);
    }),
  );
  const parameter = (a: readonly unknown[]) => {
    arity(a, 0, 2, 'Parameter');
    return asTensor(a[0]);
  };
  add(allowed('torch.nn.parameter.Parameter', parameter, parameter));
  add(allowed('torch.Tensor'));
  // Tensor subclasses rebuild through their type; only plain tensors and parameters are allowed as that type.
  const fromType = (a: readonly unknown[]) => {
    arity(a, 4, 4, '_rebuild_from_type');
    const [fn, type, args] = a;
    if (!isPyGlobal(type) || !['torch.Tensor', 'torch.nn.parameter.Parameter'].includes(type.qualifiedName)) {
      return argFail(`rebuilds tensors of type torch.Tensor or Parameter only, got ${pyTypeName(type)}`);
    }
    if (!isPyGlobal(fn) || !fn.call || fn.qualifiedName.startsWith('torch._tensor._rebuild_from_type')) {
      return argFail(`needs a tensor rebuild function, got ${pyTypeName(fn)}`);
    }
    if (!Array.isArray(args)) return argFail(`needs an argument tuple, got a ${pyTypeName(args)}`);
    return asTensor(fn.call(args));
  };
  add(allowed('torch._tensor._rebuild_from_type_v2', fromType));
  add(allowed('torch._tensor._rebuild_from_type', fromType));
  add(
    allowed('torch.Size', (a) => {
      arity(a, 0, 1, 'torch.Size');
      return Object.freeze(a.length ? naturals(a[0], 'torch.Size') : []);
    }),
  );
  add(
    allowed('torch.device', (a) => {
      arity(a, 1, 2, 'torch.device');
      if (typeof a[0] !== 'string' || (a.length === 2 && a[1] !== null && !isNatural(a[1]))) return argFail(`takes a device type and an index, got ${describeValue(a)}`);
      return a.length === 2 && a[1] !== null ? `${a[0]}:${a[1]}` : a[0];
    }),
  );
  for (const [name, dt] of STORAGE_DTYPES) {
    const g: StorageTypeGlobal = { kind: 'global', qualifiedName: `torch.${name}`, storageDType: TORCH_DTYPES.get(dt)!, untyped: false };
    add(g);
  }
  for (const name of ['UntypedStorage', '_UntypedStorage']) {
    const g: StorageTypeGlobal = { kind: 'global', qualifiedName: `torch.${name}`, storageDType: TORCH_DTYPES.get('uint8')!, untyped: true };
    add(g);
  }
  for (const [attr, dt] of DTYPE_ATTRS) {
    const g: DTypeGlobal = { kind: 'global', qualifiedName: `torch.${attr}`, torchDType: TORCH_DTYPES.get(dt)! };
    add(g);
  }
  add(
    allowed('_codecs.encode', (a) => {
      arity(a, 1, 2, '_codecs.encode');
      const [s, enc = 'utf-8'] = a;
      if (typeof s !== 'string' || typeof enc !== 'string') return argFail(`takes a string and an encoding, got ${describeValue(a)}`);
      const e = enc.toLowerCase().replace('_', '-');
      if (e === 'utf-8' || e === 'utf8') return new TextEncoder().encode(s);
      if (e !== 'latin1' && e !== 'latin-1' && e !== 'iso-8859-1') return argFail(`encoding "${enc}" (latin1 and utf-8 are supported)`);
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 0xff) return argFail('a latin1 string with a character above U+00FF');
        out[i] = c;
      }
      return out;
    }),
  );
  const setOf = (frozen: boolean) => (a: readonly unknown[]) => {
    arity(a, 0, 1, frozen ? 'frozenset' : 'set');
    if (a.length && !Array.isArray(a[0]) && !(a[0] instanceof Set)) return argFail(`takes a list, got a ${pyTypeName(a[0])}`);
    const s = new Set(a.length ? (a[0] as Iterable<unknown>) : []);
    return frozen ? Object.freeze(s) : s;
  };
  add(allowed('builtins.set', setOf(false)));
  add(allowed('builtins.frozenset', setOf(true)));
  for (const name of [
    'argparse.Namespace',
    'types.SimpleNamespace',
    'numpy.dtype',
    'numpy.ndarray',
    'numpy.core.multiarray.scalar',
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar',
    'numpy._core.multiarray._reconstruct',
  ])
    add(inert(name));
  return m;
})();

/** The globals a .pth file may name (for documentation and tests). */
export const PTH_ALLOWED_GLOBALS: readonly string[] = [...ALLOWED_GLOBALS.keys()];

function resolveGlobal(module: string, name: string): PyGlobal | undefined {
  // torch.load maps torch.tensor to torch._tensor (the module was renamed in PyTorch 1.9).
  const mod = module === 'torch.tensor' ? 'torch._tensor' : module;
  // The storage classes are reached as torch.FloatStorage, or through torch.storage / torch.cuda in old files.
  if ((mod === 'torch.cuda' || mod === 'torch.storage') && name.endsWith('Storage')) return ALLOWED_GLOBALS.get(`torch.${name.replace(/^_/, '')}`);
  return ALLOWED_GLOBALS.get(`${mod}.${name}`);
}

function refusalHint(qualifiedName: string): string {
  if (/^(__main__|torch\.nn\.modules|torchvision\.models|timm\.models|effdet)\b/.test(qualifiedName) || /Module$/.test(qualifiedName)) {
    return 'the file holds a pickled model object (torch.save(model)) rather than its weights; effnet reads weights and never runs code from a file, so save model.state_dict() with torch.save instead';
  }
  return 'effnet reads tensors, dicts, lists, numbers and strings from .pth files and never runs code from them; if you trust the file, save just its weights (torch.save(model.state_dict(), path))';
}

// ---------------------------------------------------------------------------------------------
// Describing values in errors
// ---------------------------------------------------------------------------------------------

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return `${Object.isFrozen(v) ? 'a tuple' : 'a list'} of ${v.length}`;
  if (v instanceof PthTensor) return `a tensor [${v.shape.join(', ')}]`;
  return `a ${pyTypeName(v)}`;
}

function keyList(keys: readonly unknown[]): string {
  const shown = keys.slice(0, 20).map((k) => (typeof k === 'string' ? JSON.stringify(k) : describeValue(k)));
  return `${shown.join(', ')}${keys.length > 20 ? `, … (${keys.length} in all)` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Choosing the state_dict
// ---------------------------------------------------------------------------------------------

/** A non-empty dict of string -> tensor (not a type guard: a dict that fails it is still a dict). */
function isTensorDict(v: unknown): boolean {
  if (!(v instanceof PyDict) || v.size === 0) return false;
  for (const [k, t] of v) if (typeof k !== 'string' || !(t instanceof PthTensor)) return false;
  return true;
}

function chooseStateDict(top: unknown, weightsKey: string | undefined, fail: (r: string) => never): { dict: PyDict; key: string | null; weightKeys: string[] } {
  const entries = top instanceof PyDict ? [...top] : [];
  const weightKeys = entries.filter(([k, v]) => typeof k === 'string' && isTensorDict(v)).map(([k]) => k as string);
  if (weightsKey !== undefined) {
    if (!(top instanceof PyDict)) return fail(`weights key "${weightsKey}" was asked for, but the file holds ${describeValue(top)}, not a checkpoint dict`);
    if (isTensorDict(top)) return fail(`weights key "${weightsKey}" was asked for, but the file is itself a state_dict (a dict of tensors); drop the weights key`);
    const v = top.get(weightsKey);
    if (!isTensorDict(v)) {
      const what = top.has(weightsKey) ? `holds ${describeValue(v)}, not a dict of tensors` : 'is not in the checkpoint';
      return fail(`weights key "${weightsKey}" ${what}; entries holding weights: ${weightKeys.length ? keyList(weightKeys) : 'none'}`);
    }
    return { dict: v as PyDict, key: weightsKey, weightKeys };
  }
  if (isTensorDict(top)) return { dict: top as PyDict, key: null, weightKeys };
  if (!(top instanceof PyDict)) {
    const hint = top instanceof PthTensor ? '; effnet reads named weights (a state_dict), not a lone tensor' : '';
    return fail(`the file holds ${describeValue(top)}, not a state_dict (a dict of tensors)${hint}`);
  }
  for (const k of CHECKPOINT_KEYS) if (weightKeys.includes(k)) return { dict: top.get(k) as PyDict, key: k, weightKeys };
  if (weightKeys.length === 1) return { dict: top.get(weightKeys[0]) as PyDict, key: weightKeys[0]!, weightKeys };
  if (weightKeys.length > 1) return fail(`several entries hold weights (${keyList(weightKeys)}); choose one with the weights key (--weights-key)`);
  return fail(`no entry holds a dict of tensors; the checkpoint's keys are ${keyList([...top.keys()])}`);
}

function stripWrapperPrefixes(names: string[]): string {
  let stripped = '';
  for (let again = true; again; ) {
    again = false;
    for (const p of WRAPPER_PREFIXES) {
      if (names.length && names.every((n) => n.startsWith(stripped + p) && n.length > stripped.length + p.length)) {
        stripped += p;
        again = true;
      }
    }
  }
  return stripped;
}

// ---------------------------------------------------------------------------------------------
// Reading tensors
// ---------------------------------------------------------------------------------------------

function isContiguous(t: PthTensor): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i]! !== 1 && t.stride[i]! !== expected) return false;
    expected *= t.shape[i]!;
  }
  return true;
}

/** A tensor's elements in C order, copied into a fresh aligned buffer. */
function materialize(name: string, t: PthTensor, bigEndian: boolean, fail: (r: string) => never): Tensor {
  const dtype = t.dtype.dtype;
  if (!dtype) return fail(`tensor "${name}" has dtype ${t.dtype.name}, which effnet does not read; convert it (e.g. to float32) before saving`);
  const src = t.storage.data();
  if (!src) return fail(`tensor "${name}" uses storage "${t.storage.key}", whose data is not in the file; the file is truncated or corrupt`);
  const size = t.dtype.itemSize;
  const buffer = new ArrayBuffer(t.numel * size);
  const out = new Uint8Array(buffer);
  if (t.numel > 0) {
    if (isContiguous(t)) out.set(src.subarray(t.offset * size, (t.offset + t.numel) * size));
    else gather(t, src, out, size);
  }
  if (bigEndian) swapBytesInPlace(out, size);
  return { dtype, shape: [...t.shape], data: typedArrayOnLE(dtype, buffer) };
}

/** Copies a strided view element by element (non-contiguous tensors, e.g. a transpose saved as a view). */
function gather(t: PthTensor, src: Uint8Array, out: Uint8Array, size: number): void {
  const nd = t.shape.length;
  const index = new Array<number>(nd).fill(0);
  const inner = t.shape[nd - 1]!;
  const innerStride = t.stride[nd - 1]! * size;
  let base = t.offset * size;
  let o = 0;
  for (let done = 0; done < t.numel; done += inner) {
    let s = base;
    for (let j = 0; j < inner; j++, s += innerStride) for (let b = 0; b < size; b++) out[o++] = src[s + b]!;
    // Advance the odometer over every dimension but the last.
    for (let d = nd - 2; d >= 0; d--) {
      index[d]!++;
      base += t.stride[d]! * size;
      if (index[d]! < t.shape[d]!) break;
      base -= t.stride[d]! * size * t.shape[d]!;
      index[d] = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The two container formats
// ---------------------------------------------------------------------------------------------

interface StorageSource {
  /** The Storage for a persistent id's fields, created on first sight. */
  storage(type: StorageTypeGlobal, key: string, numel: number): Storage;
}

function storageEnvironment(source: StorageSource, storages: Map<string, Storage>, legacy: boolean): PickleEnvironment {
  const views = new Map<string, Storage>();
  return {
    resolveGlobal,
    refusalHint,
    persistentLoad(pid) {
      if (!Array.isArray(pid) || pid.length === 0) return argFail(`a persistent id must be a tuple, got ${describeValue(pid)}`);
      const kind = pid[0] instanceof Uint8Array ? new TextDecoder('latin1').decode(pid[0]) : pid[0];
      if (kind === 'module') return argFail('the file holds a pickled model class (torch.save(model) in the legacy format); save model.state_dict() instead');
      if (kind !== 'storage') return argFail(`unknown persistent id kind ${describeValue(kind)} (only storages are read)`);
      if (pid.length !== (legacy ? 6 : 5)) return argFail(`a storage id has ${legacy ? 6 : 5} fields in this format, got ${pid.length}`);
      const [, type, rawKey, , numel] = pid;
      if (!isPyGlobal(type) || !(type as StorageTypeGlobal).storageDType) return argFail(`a storage id names ${describeValue(type)}, not a storage type`);
      if (typeof rawKey !== 'string' && !isNatural(rawKey)) return argFail(`a storage key must be a string, got ${describeValue(rawKey)}`);
      if (!isNatural(numel)) return argFail(`a storage size must be a non-negative integer, got ${describeValue(numel)}`);
      const st = type as StorageTypeGlobal;
      const key = String(rawKey);
      const nbytes = numel * st.storageDType.itemSize;
      if (!Number.isSafeInteger(nbytes)) return argFail(`storage "${key}" declares ${numel} elements, more than any file holds`);
      let storage = storages.get(key);
      if (!storage) {
        storage = source.storage(st, key, numel);
        storages.set(key, storage);
      } else if (storage.dtype !== st.storageDType || storage.nbytes !== nbytes) {
        return argFail(`storage "${key}" is declared twice with different types or sizes; the file is corrupt`);
      }
      const view = legacy ? pid[5] : null;
      if (view === null) return storage;
      // Legacy storage views (PyTorch < 1.0): (view_key, offset, size) in elements of the root.
      if (!Array.isArray(view) || view.length !== 3 || !isNatural(view[1]) || !isNatural(view[2])) return argFail(`a storage view must be (key, offset, size), got ${describeValue(view)}`);
      const [viewKey, offset, size] = view as [unknown, number, number];
      if (offset + size > numel) return argFail(`storage view [${offset}, ${offset + size}) runs past storage "${key}" (${numel} elements)`);
      let v = views.get(String(viewKey));
      if (!v) {
        const root = storage;
        const isz = st.storageDType.itemSize;
        v = new Storage(String(viewKey), st.storageDType, size * isz, () => root.data()?.subarray(offset * isz, (offset + size) * isz));
        views.set(String(viewKey), v);
      }
      return v;
    },
  };
}

interface Parsed {
  top: unknown;
  format: 'zip' | 'legacy';
  bigEndian: boolean;
}

function runOrFail(bytes: Uint8Array, start: number, env: PickleEnvironment, what: string, fail: (r: string) => never) {
  try {
    return runPickle(bytes, start, env);
  } catch (e) {
    if (e instanceof PickleError) return fail(`${what}: ${e.message}`);
    throw e;
  }
}

function parseZip(bytes: Uint8Array, fail: (r: string) => never): Parsed {
  const dir: ZipDirectory = readZipDirectory(bytes, fail);
  const pkl = [...dir.entries.keys()].find((n) => /^[^/]*\/data\.pkl$/.test(n) || n === 'data.pkl');
  const names = [...dir.entries.keys()];
  if (pkl === undefined) {
    if (names.some((n) => /(^|\/)constants\.pkl$/.test(n))) fail('this is a TorchScript archive (torch.jit.save); effnet reads torch.save files: save model.state_dict() with torch.save');
    return fail(`zip archive has no <name>/data.pkl, so it is not a torch.save file (entries: ${keyList(names)})`);
  }
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  if (dir.entries.has(`${prefix}constants.pkl`)) fail('this is a TorchScript archive (torch.jit.save); effnet reads torch.save files: save model.state_dict() with torch.save');
  let bigEndian = false;
  const order = dir.entries.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder('latin1').decode(zipEntryBytes(bytes, order, fail)).trim();
    if (text !== 'little' && text !== 'big') fail(`${prefix}byteorder says "${text.slice(0, 20)}"; expected "little" or "big"`);
    bigEndian = text === 'big';
  }
  const storages = new Map<string, Storage>();
  const source: StorageSource = {
    storage(type, key, numel) {
      const name = `${prefix}data/${key}`;
      const entry = dir.entries.get(name);
      if (!entry) return argFail(`storage "${key}" has no entry ${name} in the archive; the file is incomplete`);
      const nbytes = numel * type.storageDType.itemSize;
      if (entry.size < nbytes) return argFail(`storage "${key}" declares ${numel} ${type.storageDType.name} elements (${nbytes} bytes) but ${name} holds ${entry.size} bytes; the file is corrupt`);
      return new Storage(key, type.storageDType, nbytes, () => zipEntryBytes(bytes, entry, fail).subarray(0, nbytes));
    },
  };
  const data = zipEntryBytes(bytes, dir.entries.get(pkl)!, fail);
  const { value, end } = runOrFail(data, 0, storageEnvironment(source, storages, false), pkl, fail);
  if (end !== data.length) fail(`${pkl} has ${data.length - end} bytes after its STOP opcode; the file is corrupt`);
  return { top: value, format: 'zip', bigEndian };
}

/** Environment for the legacy header pickles: plain data only. */
const PLAIN_DATA: PickleEnvironment = { resolveGlobal: () => undefined, refusalHint };

function parseLegacy(bytes: Uint8Array, fail: (r: string) => never): Parsed {
  const magic = runOrFail(bytes, 0, PLAIN_DATA, 'magic number', fail);
  if (magic.value !== LEGACY_MAGIC) fail('the first pickle is not PyTorch\'s magic number; this is not a torch.save file');
  const protocol = runOrFail(bytes, magic.end, PLAIN_DATA, 'protocol version', fail);
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) fail(`legacy format protocol version ${describeValue(protocol.value)} (effnet reads ${LEGACY_PROTOCOL_VERSION})`);
  const sysInfo = runOrFail(bytes, protocol.end, PLAIN_DATA, 'sys_info', fail);
  const storages = new Map<string, Storage>();
  const source: StorageSource = { storage: (type, key, numel) => new Storage(key, type.storageDType, numel * type.storageDType.itemSize) };
  const obj = runOrFail(bytes, sysInfo.end, storageEnvironment(source, storages, true), 'object pickle', fail);
  const keys = runOrFail(bytes, obj.end, PLAIN_DATA, 'storage key list', fail);
  if (!Array.isArray(keys.value)) fail(`the storage key list is ${describeValue(keys.value)}, not a list; the file is corrupt`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const k of keys.value as unknown[]) {
    const key = String(k);
    const storage = storages.get(key);
    if (!storage) fail(`storage key ${describeValue(k)} is listed but no tensor refers to it; the file is corrupt`);
    if (storage!.hasData) fail(`storage key ${describeValue(k)} is listed twice; the file is corrupt`);
    if (pos + 8 > bytes.length) fail(`storage "${key}" is missing: the file ends at byte ${bytes.length}; it is truncated`);
    const numel = view.getBigInt64(pos, true);
    const isz = storage!.dtype.itemSize;
    if (numel * BigInt(isz) !== BigInt(storage!.nbytes)) {
      fail(`storage "${key}" holds ${numel} elements in the file but ${storage!.nbytes / isz} in its tensors' description; the file is corrupt`);
    }
    pos += 8;
    if (pos + storage!.nbytes > bytes.length) fail(`storage "${key}" needs ${storage!.nbytes} bytes at ${pos} but the file ends at ${bytes.length}; it is truncated`);
    storage!.setData(bytes.subarray(pos, pos + storage!.nbytes));
    pos += storage!.nbytes;
  }
  return { top: obj.value, format: 'legacy', bigEndian: false };
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/** Whether bytes start like a legacy torch.save file (a binary pickle). */
export function looksLikeLegacyPth(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x80 && bytes[1]! >= 2 && bytes[1]! <= 5;
}

/**
 * Parses a PyTorch checkpoint held in memory (zip or legacy format) and returns its weights. Nothing in the file is
 * executed: only allow-listed globals are resolved (see the file's header).
 *
 * @throws TensorFileError naming the file for anything malformed, any global not allowed (named in the message),
 *   an unknown or missing weights key (listing the entries that hold weights), or a dtype effnet does not read
 */
export function parsePth(bytes: Uint8Array, opts: PthOptions = {}): PthContents {
  const file = opts.file ?? '<buffer>';
  const fail = (reason: string): never => {
    throw new TensorFileError(file, reason);
  };
  if (!(bytes instanceof Uint8Array)) return fail(`expected the file contents as a Uint8Array, got ${typeof bytes}`);
  let parsed: Parsed;
  if (looksLikeZip(bytes)) parsed = parseZip(bytes, fail);
  else if (looksLikeLegacyPth(bytes)) parsed = parseLegacy(bytes, fail);
  else if (bytes.length > 262 && new TextDecoder('latin1').decode(bytes.subarray(257, 262)) === 'ustar') {
    return fail('this is a tar-format PyTorch file (PyTorch < 1.0), which effnet does not read; load and re-save it with a recent torch.save');
  } else return fail('not a PyTorch checkpoint: it starts with neither a zip header (PK) nor a pickle (0x80); the file is corrupt or of another kind');

  const { dict, key, weightKeys } = chooseStateDict(parsed.top, opts.weightsKey, fail);
  const names = [...dict.keys()] as string[];
  const prefix = stripWrapperPrefixes(names);
  let total = 0;
  for (const t of dict.values()) total += (t as PthTensor).numel * (t as PthTensor).dtype.itemSize;
  const limit = MAX_MATERIALIZED_RATIO * bytes.length;
  if (total > limit) {
    fail(`its tensors would take ${total} bytes, more than ${MAX_MATERIALIZED_RATIO} times the file's ${bytes.length}; views of shared storages multiply it past what effnet accepts`);
  }
  const tensors: TensorMap = new Map();
  for (const [name, t] of dict) tensors.set((name as string).slice(prefix.length), materialize(name as string, t as PthTensor, parsed.bigEndian, fail));
  return { tensors, key, format: parsed.format, strippedPrefix: prefix || null, weightKeys };
}

/**
 * Reads and parses a PyTorch checkpoint file (see {@link parsePth}).
 * @throws TensorFileError naming `path` if the file cannot be read or parsed
 */
export async function readPth(path: string, opts: Omit<PthOptions, 'file'> = {}): Promise<PthContents> {
  await loadInflate();
  return parsePth(await readFileBytes(path), { ...opts, file: path });
}
