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

class Reader {
  pos = 0;
  constructor(
    readonly b: Uint8Array,
    readonly end = b.length,
  ) {}

  varint(): bigint {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const c = this.b[this.pos++]!;
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
const str = (b: Uint8Array, s: number, e: number) => text.decode(b.subarray(s, e));

function fields(b: Uint8Array, start: number, end: number, visit: (f: NonNullable<ReturnType<Reader['next']>>) => void): void {
  const r = new Reader(b, end);
  r.pos = start;
  for (let f = r.next(); f; f = r.next()) visit(f);
}

/** StringStringEntryProto: key 1, value 2. */
function entry(b: Uint8Array, s: number, e: number): [string, string] {
  let key = '';
  let value = '';
  fields(b, s, e, (f) => {
    if (f.field === 1 && f.wire === 2) key = str(b, f.start, f.stop);
    if (f.field === 2 && f.wire === 2) value = str(b, f.start, f.stop);
  });
  return [key, value];
}

/** ValueInfoProto: name 1, type 2 -> TypeProto tensor_type 1 -> elem_type 1, shape 2 -> dim 1 -> dim_value 1 | dim_param 2. */
function valueInfo(b: Uint8Array, s: number, e: number): OnnxValueShape {
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
export function parseOnnxInfo(bytes: Uint8Array, file = 'the ONNX model'): OnnxFileInfo {
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

/** Reads an ONNX file's bytes and what it says about itself. */
export async function readOnnxFile(path: string): Promise<{ bytes: Uint8Array; info: OnnxFileInfo }> {
  const { readFileBytes } = await import('./files.js');
  const bytes = await readFileBytes(path);
  return { bytes, info: parseOnnxInfo(bytes, path) };
}
