/**
 * A restricted pickle virtual machine: the binary opcodes of protocols 2-5 that `torch.save` and plain data emit,
 * with no way to run code. Python's unpickler imports whatever `GLOBAL` names and calls it in `REDUCE`; here `GLOBAL`
 * asks the caller's allow-list (a map from "module.name" to an object implemented in TypeScript) and anything not
 * on it is an error naming the global, before anything else happens. `REDUCE`, `NEWOBJ` and `BUILD` only ever call
 * those TypeScript implementations. See pth.ts for why effnet does not use a pickle library.
 *
 * Bounds: every length is checked against the bytes that remain, so no string, byte string or integer is larger
 * than the pickle; the machine is a loop (no recursion, whatever the nesting); the stack holds at most
 * {@link MAX_PICKLE_STACK} values; each opcode does work proportional to the values it consumes, so a pickle of n
 * bytes runs in O(n) steps and allocates O(n) values.
 *
 * Python values become: None null, bool boolean, int number (bigint beyond 2^53), float number, str string,
 * bytes Uint8Array, list Array, tuple a frozen Array, dict {@link PyDict} (a Map), set Set, and whatever the
 * allow-listed globals build.
 */

/** A Python dict: a Map (keys compare like JavaScript values) plus the attributes BUILD gave it (OrderedDict._metadata). */
export class PyDict extends Map<unknown, unknown> {
  attributes?: unknown;
}

/**
 * What REDUCE and NEWOBJ may do with an allow-listed global. The functions throw PickleError (offset -1: the machine
 * supplies the opcode's) for arguments they do not accept.
 */
export interface PyGlobal {
  readonly kind: 'global';
  /** "module.name", as in error messages. */
  readonly qualifiedName: string;
  /** REDUCE: `global(*args)`. */
  readonly call?: (args: readonly unknown[]) => unknown;
  /** NEWOBJ: `global.__new__(global, *args)`; defaults to `call`. */
  readonly construct?: (args: readonly unknown[]) => unknown;
}

/** A value that BUILD may update with a state (inert objects, dicts take attributes). */
export interface Buildable {
  build(state: unknown): void;
}

/** A pickle that cannot be run: malformed, out of bounds, or asking for something not allowed. `offset` is the opcode's. */
export class PickleError extends Error {
  override name = 'PickleError';
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`${reason} (at byte ${offset} of the pickle)`);
  }
}

/** The allow-list and the persistent-id handler a pickle runs with. */
export interface PickleEnvironment {
  /** The global "module.name", or undefined when it is not allowed (the machine then stops with an error naming it). */
  resolveGlobal(module: string, name: string): PyGlobal | undefined;
  /** The value a persistent id stands for (BINPERSID). Throws PickleError for ids it does not know. */
  persistentLoad?(pid: unknown): unknown;
  /** Added to the "not allowed" error, e.g. what the caller would need to do. */
  refusalHint?(qualifiedName: string): string;
}

/** Deepest a value stack (all MARK levels together) may grow. Real pickles stay far below it (a list of n items needs n). */
export const MAX_PICKLE_STACK = 1 << 22;
/** Longest LONG4 integer accepted, in bytes. */
const MAX_LONG_BYTES = 1024;
/** Longest GLOBAL line (module or name). */
const MAX_GLOBAL_LINE = 1024;

/**
 * Python 2 module names that protocol 0-2 pickles use, and the Python 3 modules Python's unpickler maps them to
 * (`_compat_pickle.IMPORT_MAPPING`, the entries that matter here): globals are resolved and named by the latter.
 */
const PY2_MODULES = new Map([
  ['__builtin__', 'builtins'],
  ['exceptions', 'builtins'],
  ['copy_reg', 'copyreg'],
  ['commands', 'subprocess'],
  ['cPickle', 'pickle'],
  ['httplib', 'http.client'],
  ['urllib2', 'urllib.request'],
  ['UserDict', 'collections'],
  ['UserList', 'collections'],
  ['UserString', 'collections'],
  ['StringIO', 'io'],
  ['cStringIO', 'io'],
]);

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

export function isPyGlobal(v: unknown): v is PyGlobal {
  return typeof v === 'object' && v !== null && (v as PyGlobal).kind === 'global';
}

function isBuildable(v: unknown): v is Buildable {
  return typeof v === 'object' && v !== null && typeof (v as Buildable).build === 'function';
}

/** A short name for a value's Python type, for error messages. */
export function pyTypeName(v: unknown): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'tuple' : 'list';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof Set) return 'set';
  if (isPyGlobal(v)) return v.qualifiedName;
  const ctor = (v as { pyType?: string }).pyType;
  return typeof ctor === 'string' ? ctor : typeof v;
}

/** Little-endian two's-complement bytes (pickle's LONG1/LONG4) as a number when safe, else a bigint. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export interface PickleResult {
  value: unknown;
  /** Offset just past the STOP opcode (legacy .pth files hold several pickles in a row). */
  end: number;
}

/**
 * Runs one pickle starting at `start`, up to its STOP. Throws PickleError for anything malformed or not allowed.
 */
export function runPickle(bytes: Uint8Array, start: number, env: PickleEnvironment): PickleResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  let pos = start;
  let op = start;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  let depth = 0;
  const memo = new Map<number, unknown>();

  const fail = (reason: string): never => {
    throw new PickleError(reason, op);
  };
  const need = (n: number, what: string): number => {
    if (n > end - pos) fail(`${what} needs ${n} bytes but only ${end - pos} remain; the pickle is truncated or corrupt`);
    const at = pos;
    pos += n;
    return at;
  };
  const push = (v: unknown) => {
    if (++depth > MAX_PICKLE_STACK) fail(`the pickle's stack grows past ${MAX_PICKLE_STACK} values`);
    stack.push(v);
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow (an opcode needs a value that is not there)');
    depth--;
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow (an opcode needs a value that is not there)');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const below = marks.pop();
    if (below === undefined) fail('an opcode needs a MARK that is not there');
    stack = below!;
    depth -= items.length + 1;
    return items;
  };
  const readBytes = (n: number, what: string): Uint8Array => {
    const at = need(n, what);
    return bytes.subarray(at, at + n);
  };
  const readLine = (what: string): string => {
    const limit = Math.min(end, pos + MAX_GLOBAL_LINE + 1);
    let i = pos;
    while (i < limit && bytes[i] !== 0x0a) i++;
    if (i >= limit) fail(`${what} is not a newline-terminated line of at most ${MAX_GLOBAL_LINE} bytes`);
    const s = utf8.decode(bytes.subarray(pos, i));
    pos = i + 1;
    return s;
  };
  const u32 = (what: string) => view.getUint32(need(4, what), true);
  const u64 = (what: string): number => {
    const v = view.getBigUint64(need(8, what), true);
    if (v > BigInt(end - pos)) fail(`${what} declares ${v} bytes but only ${end - pos} remain; the pickle is truncated or corrupt`);
    return Number(v);
  };
  const resolveGlobal = (written: string, name: string) => {
    const module = PY2_MODULES.get(written) ?? written;
    const g = env.resolveGlobal(module, name);
    if (!g) {
      const qualified = `${module}.${name}`;
      const spelling = module === written ? '' : ` (written "${written}.${name}")`;
      fail(`refuses the global "${qualified}"${spelling}: it is not on the allow-list of inert PyTorch types${env.refusalHint ? `; ${env.refusalHint(qualified)}` : ''}`);
    }
    return g!;
  };
  const setItem = (dict: unknown, k: unknown, v: unknown) => {
    if (!(dict instanceof PyDict)) fail(`SETITEM on a ${pyTypeName(dict)}; only dicts take items`);
    (dict as PyDict).set(k, v);
  };
  const appendTo = (list: unknown, items: readonly unknown[]) => {
    if (!Array.isArray(list) || Object.isFrozen(list)) fail(`APPEND on a ${pyTypeName(list)}; only lists take appends`);
    for (const it of items) (list as unknown[]).push(it);
  };
  const addTo = (set: unknown, items: readonly unknown[]) => {
    if (!(set instanceof Set) || Object.isFrozen(set)) fail(`ADDITEMS on a ${pyTypeName(set)}; only sets take items`);
    for (const it of items) (set as Set<unknown>).add(it);
  };
  const str = (b: Uint8Array) => utf8.decode(b);
  const tuple = (items: unknown[]) => Object.freeze(items);
  const call = (fn: unknown, args: unknown, how: 'REDUCE' | 'NEWOBJ'): unknown => {
    if (!Array.isArray(args)) fail(`${how} needs an argument tuple, got a ${pyTypeName(args)}`);
    if (!isPyGlobal(fn)) fail(`${how} on a ${pyTypeName(fn)}, which is not an allowed callable`);
    const g = fn as PyGlobal;
    const f = how === 'NEWOBJ' ? (g.construct ?? g.call) : g.call;
    if (!f) fail(`${how} on "${g.qualifiedName}", which is allowed as a value but cannot be called`);
    return guard(() => f!(args as unknown[]), `${g.qualifiedName}: `);
  };
  /** Runs an allow-listed implementation; its PickleErrors get this opcode's offset. */
  const guard = <T>(fn: () => T, prefix = ''): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof PickleError) fail(`${prefix}${e.reason}`);
      throw e;
    }
  };

  while (pos < end) {
    op = pos;
    const code = bytes[pos++]!;
    switch (code) {
      case 0x80: // PROTO
        if (bytes[need(1, 'PROTO')]! > 5) fail(`pickle protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length hint, the bytes follow inline
        need(8, 'FRAME');
        break;
      case 0x2e: {
        // STOP
        if (marks.length) fail('STOP inside an unclosed MARK');
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack (expected exactly one)`);
        return { value: stack[0], end: pos };
      }
      case 0x28: // MARK
        if (++depth > MAX_PICKLE_STACK) fail(`the pickle's stack grows past ${MAX_PICKLE_STACK} values`);
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0 && marks.length) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(view.getInt32(need(4, 'BININT'), true));
        break;
      case 0x4b: // BININT1
        push(bytes[need(1, 'BININT1')]!);
        break;
      case 0x4d: // BININT2
        push(view.getUint16(need(2, 'BININT2'), true));
        break;
      case 0x8a: // LONG1
        push(decodeLong(readBytes(bytes[need(1, 'LONG1')]!, 'LONG1')));
        break;
      case 0x8b: {
        // LONG4
        const n = view.getInt32(need(4, 'LONG4'), true);
        if (n < 0 || n > MAX_LONG_BYTES) fail(`LONG4 of ${n} bytes (at most ${MAX_LONG_BYTES} are accepted)`);
        push(decodeLong(readBytes(n, 'LONG4')));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        push(view.getFloat64(need(8, 'BINFLOAT'), false));
        break;
      case 0x58: // BINUNICODE
        push(str(readBytes(u32('BINUNICODE'), 'BINUNICODE')));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(str(readBytes(bytes[need(1, 'SHORT_BINUNICODE')]!, 'SHORT_BINUNICODE')));
        break;
      case 0x8d: // BINUNICODE8
        push(str(readBytes(u64('BINUNICODE8'), 'BINUNICODE8')));
        break;
      case 0x54: // BINSTRING (Python 2 str): text, as torch.load reads it
        push(latin1.decode(readBytes(u32('BINSTRING'), 'BINSTRING')));
        break;
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(readBytes(bytes[need(1, 'SHORT_BINSTRING')]!, 'SHORT_BINSTRING')));
        break;
      case 0x42: // BINBYTES (views on the file: bytes values are never written to)
        push(readBytes(u32('BINBYTES'), 'BINBYTES'));
        break;
      case 0x43: // SHORT_BINBYTES
        push(readBytes(bytes[need(1, 'SHORT_BINBYTES')]!, 'SHORT_BINBYTES'));
        break;
      case 0x8e: // BINBYTES8
        push(readBytes(u64('BINBYTES8'), 'BINBYTES8'));
        break;
      case 0x96: // BYTEARRAY8
        push(readBytes(u64('BYTEARRAY8'), 'BYTEARRAY8'));
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x85: // TUPLE1
        push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        push(tuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        push(tuple([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(tuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendTo(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of keys and values');
        const d = new PyDict();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of keys and values');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        addTo(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        push(Object.freeze(new Set(popMark())));
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = readLine('GLOBAL module');
        const name = readLine('GLOBAL name');
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs a module and a name as strings');
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        push(call(fn, args, 'REDUCE'));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        push(call(cls, args, 'NEWOBJ'));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX: keyword arguments are not used by anything allowed
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof PyDict) || kwargs.size) fail('NEWOBJ_EX with keyword arguments');
        push(call(cls, args, 'NEWOBJ'));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const target = top();
        if (target instanceof PyDict) target.attributes = state;
        else if (isBuildable(target)) target.build(state);
        else fail(`BUILD on a ${pyTypeName(target)}, which takes no state`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!env.persistentLoad) fail('a persistent id, which this kind of file does not use');
        push(guard(() => env.persistentLoad!(pid)));
        break;
      }
      case 0x71: // BINPUT
        memo.set(bytes[need(1, 'BINPUT')]!, top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32('LONG_BINPUT'), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = code === 0x68 ? bytes[need(1, 'BINGET')]! : u32('LONG_BINGET');
        if (!memo.has(i)) fail(`BINGET of memo slot ${i}, which was never set`);
        push(memo.get(i));
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${code.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(code))}); torch.save files use binary protocols 2 to 5`);
    }
  }
  return fail('the pickle ends without a STOP opcode; the file is truncated');
}
