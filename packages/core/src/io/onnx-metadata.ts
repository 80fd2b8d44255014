/**
 * What an ONNX file says about itself without loading it into a runtime: ModelProto's metadata_props, producer and
 * opset, and its graph's first input and outputs (names and shapes). A minimal protocol-buffers reader: fields it
 * does not need (nodes, initializers: almost all of the bytes) are skipped by their length, never decoded.
 */
import { TensorFileError } from '../errors.js';

export interface OnnxFileInfo {
  producerName: string;
  producerVersion: string;
  /** The default domain's opset. */
  opset?: number;
  /** metadata_props, in file order. */
  metadata: Record<string, string>;
  /** The graph's inputs that are not initializers (name and dims: a number, or a symbolic name / null when unknown). */
  inputs: OnnxValueShape[];
  outputs: OnnxValueShape[];
}

export interface OnnxValueShape {
  name: string;
  /** TensorProto.DataType (1 float32, 10 float16, ...). */
  elemType?: number;
  dims: (number | string | null)[];
}

/**
 * Bytes the reader can address: a Uint8Array, or a file read a page at a time (readOnnxFileInfo), so that the fields it
 * skips (weights: almost all of a model) are never read from disk.
 */
interface ByteSource {
  readonly length: number;
  at(i: number): number;
  slice(start: number, end: number): Uint8Array;
}

const arraySource = (b: Uint8Array): ByteSource => ({ length: b.length, at: (i) => b[i]!, slice: (s, e) => b.subarray(s, e) });

const PAGE = 4096;

/** A file's bytes, read on demand in 4 KB pages (kept: headers are visited once each, in order). */
function fileSource(fd: number, length: number, readSync: (fd: number, b: Uint8Array, off: number, len: number, pos: number) => number): ByteSource {
  const pages = new Map<number, Uint8Array>();
  const page = (n: number) => {
    let p = pages.get(n);
    if (!p) {
      p = new Uint8Array(Math.min(PAGE, length - n * PAGE));
      for (let got = 0; got < p.length; ) {
        const r = readSync(fd, p, got, p.length - got, n * PAGE + got);
        if (r <= 0) throw new Error('the file ended early (was it changed while being read?)');
        got += r;
      }
      pages.set(n, p);
    }
    return p;
  };
  return {
    length,
    at: (i) => page(Math.floor(i / PAGE))[i % PAGE]!,
    slice(s, e) {
      const out = new Uint8Array(e - s);
      for (let i = s; i < e; ) {
        const n = Math.floor(i / PAGE);
        const p = page(n);
        const from = i - n * PAGE;
        const take = Math.min(p.length - from, e - i);
        out.set(p.subarray(from, from + take), i - s);
        i += take;
      }
      return out;
    },
  };
}

class Reader {
  pos = 0;
  constructor(
    readonly b: ByteSource,
    readonly end = b.length,
  ) {}

  varint(): bigint {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const c = this.b.at(this.pos++);
      x |= BigInt(c & 0x7f) << shift;
      if (c < 0x80) return x;
      shift += 7n;
      if (shift > 70n) throw new Error('varint too long');
    }
  }

  /** The next field: its number, wire type, and for length-delimited fields the [start, end) of its bytes. */
  next(): { field: number; wire: number; start: number; stop: number; value?: bigint } | undefined {
    if (this.pos >= this.end) return undefined;
    const tag = Number(this.varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    switch (wire) {
      case 0:
        return { field, wire, start: this.pos, stop: this.pos, value: this.varint() };
      case 1:
        this.pos += 8;
        break;
      case 5:
        this.pos += 4;
        break;
      case 2: {
        const len = Number(this.varint());
        const start = this.pos;
        this.pos += len;
        if (this.pos > this.end) throw new Error(`field ${field} runs past the end of its message`);
        return { field, wire, start, stop: this.pos };
      }
      default:
        throw new Error(`wire type ${wire} (field ${field}) is not protocol buffers`);
    }
    if (this.pos > this.end) throw new Error('truncated field');
    return { field, wire, start: this.pos, stop: this.pos };
  }
}

const text = new TextDecoder('utf-8', { fatal: false });
const str = (b: ByteSource, s: number, e: number) => text.decode(b.slice(s, e));

function fields(b: ByteSource, start: number, end: number, visit: (f: NonNullable<ReturnType<Reader['next']>>) => void): void {
  const r = new Reader(b, end);
  r.pos = start;
  for (let f = r.next(); f; f = r.next()) visit(f);
}

/** StringStringEntryProto: key 1, value 2. */
function entry(b: ByteSource, s: number, e: number): [string, string] {
  let key = '';
  let value = '';
  fields(b, s, e, (f) => {
    if (f.field === 1 && f.wire === 2) key = str(b, f.start, f.stop);
    if (f.field === 2 && f.wire === 2) value = str(b, f.start, f.stop);
  });
  return [key, value];
}

/** ValueInfoProto: name 1, type 2 -> TypeProto tensor_type 1 -> elem_type 1, shape 2 -> dim 1 -> dim_value 1 | dim_param 2. */
function valueInfo(b: ByteSource, s: number, e: number): OnnxValueShape {
  const v: OnnxValueShape = { name: '', dims: [] };
  fields(b, s, e, (f) => {
    if (f.field === 1 && f.wire === 2) v.name = str(b, f.start, f.stop);
    if (f.field !== 2 || f.wire !== 2) return;
    fields(b, f.start, f.stop, (t) => {
      if (t.field !== 1 || t.wire !== 2) return;
      fields(b, t.start, t.stop, (tt) => {
        if (tt.field === 1 && tt.wire === 0) v.elemType = Number(tt.value);
        if (tt.field !== 2 || tt.wire !== 2) return;
        fields(b, tt.start, tt.stop, (d) => {
          if (d.field !== 1 || d.wire !== 2) return;
          let dim: number | string | null = null;
          fields(b, d.start, d.stop, (x) => {
            if (x.field === 1 && x.wire === 0) dim = Number(x.value);
            if (x.field === 2 && x.wire === 2) dim = str(b, x.start, x.stop);
          });
          v.dims.push(dim);
        });
      });
    });
  });
  return v;
}

/** Parses the parts of an ONNX ModelProto described by OnnxFileInfo; `file` names it in errors. */
export function parseOnnxInfo(model: Uint8Array, file = 'the ONNX model'): OnnxFileInfo {
  return parseInfo(arraySource(model), file);
}

function parseInfo(bytes: ByteSource, file: string): OnnxFileInfo {
  const info: OnnxFileInfo = { producerName: '', producerVersion: '', metadata: {}, inputs: [], outputs: [] };
  let sawGraph = false;
  try {
    fields(bytes, 0, bytes.length, (f) => {
      if (f.wire === 2 && f.field === 2) info.producerName = str(bytes, f.start, f.stop);
      else if (f.wire === 2 && f.field === 3) info.producerVersion = str(bytes, f.start, f.stop);
      else if (f.wire === 2 && f.field === 14) {
        const [k, v] = entry(bytes, f.start, f.stop);
        // A key such as "__proto__" is data here, never the object's prototype.
        Object.defineProperty(info.metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      } else if (f.wire === 2 && f.field === 8) {
        let domain = '';
        let version: number | undefined;
        fields(bytes, f.start, f.stop, (o) => {
          if (o.field === 1 && o.wire === 2) domain = str(bytes, o.start, o.stop);
          if (o.field === 2 && o.wire === 0) version = Number(o.value);
        });
        if (domain === '' || domain === 'ai.onnx') info.opset = version;
      } else if (f.wire === 2 && f.field === 7) {
        sawGraph = true;
        const initializers = new Set<string>();
        const inputs: OnnxValueShape[] = [];
        fields(bytes, f.start, f.stop, (g) => {
          if (g.wire !== 2) return;
          if (g.field === 11) inputs.push(valueInfo(bytes, g.start, g.stop));
          else if (g.field === 12) info.outputs.push(valueInfo(bytes, g.start, g.stop));
          else if (g.field === 5)
            fields(bytes, g.start, g.stop, (t) => {
              if (t.field === 8 && t.wire === 2) initializers.add(str(bytes, t.start, t.stop));
            });
        });
        info.inputs = inputs.filter((i) => !initializers.has(i.name));
      }
    });
  } catch (e) {
    throw new TensorFileError(file, `not an ONNX model (${(e as Error).message})`);
  }
  if (!sawGraph) throw new TensorFileError(file, 'not an ONNX model (no graph in it)');
  return info;
}

/**
 * What an ONNX file says about itself, reading only the bytes that say it (a few pages of headers, not the weights):
 * a 21 MB model costs a few hundred KB of reads. `size` is the file's length.
 */
export async function readOnnxFileInfo(path: string): Promise<{ size: number; info: OnnxFileInfo }> {
  const { openSync, fstatSync, readSync, closeSync } = await import('node:fs');
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new TensorFileError(path, `cannot read the file: ${(e as Error)?.message ?? String(e)}`);
  }
  try {
    const size = fstatSync(fd).size;
    return { size, info: parseInfo(fileSource(fd, size, readSync), path) };
  } finally {
    closeSync(fd);
  }
}
