import { ProtoWriter } from './protobuf.js';

/** ONNX TensorProto.DataType values we emit. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type OnnxDataType = (typeof DataType)[keyof typeof DataType];

export type AttributeValue = number | string | number[] | { float: number } | { floats: number[] } | { ints: number[] };

/** One ONNX NodeProto, before encoding. Integers are INT attributes; wrap floats as { float } to say so. */
export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
  docString?: string;
  /** Operator set domain; the default ONNX domain when absent (e.g. 'com.microsoft.nchwc' for ORT's NCHWc kernels). */
  domain?: string;
}

/** An initializer: raw little-endian bytes, or a reference into an external data file. */
export interface OnnxTensor {
  name: string;
  dataType: OnnxDataType;
  dims: number[];
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataType;
  /** number = fixed size, string = a named dynamic axis; absent: unknown (a float tensor of any shape). */
  shape?: (number | string)[];
  docString?: string;
}

export interface OnnxModel {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  docString: string;
  graphName: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  metadata: Record<string, string>;
  /** Operator sets beyond the default domain's `opset` (e.g. { domain: 'com.microsoft.nchwc', version: 1 }). */
  extraOpsets?: { domain: string; version: number }[];
}

// AttributeProto.AttributeType
const FLOAT = 1;
const INT = 2;
const STRING = 3;
const FLOATS = 6;
const INTS = 7;

function attribute(name: string, v: AttributeValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer; pass { float: ${v} } for a FLOAT`);
    return w.int(3, v).int(20, INT);
  }
  if (typeof v === 'string') return w.string(4, v).int(20, STRING);
  if (Array.isArray(v)) return w.packedInts(8, v).int(20, INTS);
  if ('float' in v) return w.float(2, v.float).int(20, FLOAT);
  if ('floats' in v) return w.packedFloats(7, v.floats).int(20, FLOATS);
  return w.packedInts(8, v.ints).int(20, INTS);
}

function node(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, attribute(k, v));
  if (n.docString) w.string(6, n.docString);
  if (n.domain) w.string(7, n.domain);
  return w;
}

function stringEntry(key: string, value: string): ProtoWriter {
  return new ProtoWriter().string(1, key).string(2, value);
}

function tensor(t: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter().packedInts(1, t.dims).int(2, t.dataType).string(8, t.name);
  if (t.external) {
    w.message(13, stringEntry('location', t.external.location));
    w.message(13, stringEntry('offset', String(t.external.offset)));
    w.message(13, stringEntry('length', String(t.external.length)));
    w.int(14, 1); // DataLocation.EXTERNAL
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
  return w;
}

function valueInfo(v: OnnxValueInfo): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, v.elemType);
  if (v.shape) {
    const shape = new ProtoWriter();
    for (const d of v.shape) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
    tensorType.message(2, shape);
  }
  const w = new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
  if (v.docString) w.string(3, v.docString);
  return w;
}

/** Encodes a ModelProto. */
export function encodeModel(m: OnnxModel): Uint8Array {
  const g = new ProtoWriter();
  for (const n of m.nodes) g.message(1, node(n));
  g.string(2, m.graphName);
  for (const t of m.initializers) g.message(5, tensor(t));
  for (const i of m.inputs) g.message(11, valueInfo(i));
  for (const o of m.outputs) g.message(12, valueInfo(o));
  const w = new ProtoWriter()
    .int(1, m.irVersion)
    .string(2, m.producerName)
    .string(3, m.producerVersion)
    .string(6, m.docString)
    .message(7, g)
    .message(8, new ProtoWriter().string(1, '').int(2, m.opset));
  for (const o of m.extraOpsets ?? []) w.message(8, new ProtoWriter().string(1, o.domain).int(2, o.version));
  for (const [k, v] of Object.entries(m.metadata)) w.message(14, stringEntry(k, v));
  return w.finish();
}
