/**
 * The Open Inference Protocol (KServe v2) inference request and response, as JSON and with the binary tensor data
 * extension: the body is a JSON header of `Inference-Header-Content-Length` bytes followed by the raw tensors (little
 * endian, row-major) of every input whose parameters give `binary_data_size`, in the order of the inputs. Outputs are
 * returned as binary when the request asks (`binary_data` on the output, or `binary_data_output` on the request).
 *
 * Parsing checks everything against the model's metadata and names the tensor and what was expected.
 */
import { numel } from '@effnet/core';
import { BadRequestError } from './errors.js';

export const HEADER_LENGTH = 'inference-header-content-length';

/** Bytes per element of each datatype the protocol names (BYTES is variable). */
export const DATATYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  BF16: 2,
  FP32: 4,
  FP64: 8,
};

/** A tensor in model metadata: -1 marks a dimension of any size (the batch). */
export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface InferInput {
  name: string;
  shape: number[];
  datatype: 'FP32';
  data: Float32Array;
}

export interface RequestedOutput {
  name: string;
  binary: boolean;
}

export interface InferRequest {
  id?: string;
  inputs: InferInput[];
  /** The outputs to return (all of the model's when the request names none). */
  outputs: RequestedOutput[];
}

export interface InferOutput {
  name: string;
  shape: number[];
  data: Float32Array;
  binary: boolean;
}

/** FP32 values from `bytes` bytes of `body` at `offset`, copied (a Float32Array needs 4-byte alignment; Buffer.slice would share the pool). */
function float32At(body: Uint8Array, offset: number, bytes: number): Float32Array {
  const copy = new Uint8Array(bytes);
  copy.set(body.subarray(offset, offset + bytes));
  return new Float32Array(copy.buffer);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parameters(v: unknown, where: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isObject(v)) throw new BadRequestError(`${where}: "parameters" must be an object, got ${JSON.stringify(v)}`);
  return v;
}

/** Row-major flattening of `data` (flat or nested arrays of numbers). */
function flattenNumbers(data: unknown, where: string, expected: number): Float32Array {
  const out = new Float32Array(expected);
  let n = 0;
  const stack: unknown[][] = [];
  const idx: number[] = [];
  if (!Array.isArray(data)) throw new BadRequestError(`${where}: "data" must be an array of numbers (row-major, flat or nested), got ${typeof data}`);
  stack.push(data);
  idx.push(0);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const i = idx[idx.length - 1]!;
    if (i === top.length) {
      stack.pop();
      idx.pop();
      continue;
    }
    idx[idx.length - 1] = i + 1;
    const v = top[i];
    if (Array.isArray(v)) {
      stack.push(v);
      idx.push(0);
    } else if (typeof v === 'number') {
      if (n >= expected) throw new BadRequestError(`${where}: "data" has more than the ${expected} values its shape needs`);
      out[n++] = v;
    } else throw new BadRequestError(`${where}: "data" must hold numbers for datatype FP32, found ${JSON.stringify(v)} at value ${n}`);
  }
  if (n !== expected) throw new BadRequestError(`${where}: "data" has ${n} values, its shape needs ${expected}`);
  return out;
}

function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new BadRequestError(`${where}: "shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  return shape as number[];
}

function fits(shape: number[], want: number[]): number {
  if (shape.length !== want.length) return -2;
  for (let i = 0; i < want.length; i++) if (want[i] !== -1 && want[i] !== shape[i]) return i;
  return -1;
}

/** Parses the JSON header as JSON; a syntax error is a 400 that says where. */
function parseJson(bytes: Uint8Array): unknown {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BadRequestError(`the request is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Reads an inference request for a model with the given inputs and outputs. `headerLength` is the value of the
 * Inference-Header-Content-Length header (undefined: the whole body is JSON).
 */
export function parseInferRequest(body: Uint8Array, headerLength: string | undefined, model: { name: string; inputs: TensorMetadata[]; outputs: TensorMetadata[] }): InferRequest {
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    const n = /^\d+$/.test(headerLength.trim()) ? Number(headerLength) : NaN;
    if (!(n <= body.length)) throw new BadRequestError(`Inference-Header-Content-Length: ${JSON.stringify(headerLength)} must be an integer no larger than the body (${body.length} bytes)`);
    jsonLength = n;
  }
  const req = parseJson(body.subarray(0, jsonLength));
  if (!isObject(req)) throw new BadRequestError('the request must be a JSON object with "inputs"');
  if (req.id !== undefined && typeof req.id !== 'string') throw new BadRequestError(`"id" must be a string, got ${JSON.stringify(req.id)}`);
  const reqParams = parameters(req.parameters, 'the request');
  if (!Array.isArray(req.inputs) || req.inputs.length === 0) throw new BadRequestError(`"inputs" must be a non-empty array; model "${model.name}" takes ${model.inputs.map((i) => `"${i.name}"`).join(', ')}`);

  let offset = jsonLength;
  const inputs: InferInput[] = [];
  const seen = new Set<string>();
  for (const [k, raw] of req.inputs.entries()) {
    if (!isObject(raw) || typeof raw.name !== 'string') throw new BadRequestError(`inputs[${k}] must be an object with a "name"`);
    const where = `input "${raw.name}"`;
    const meta = model.inputs.find((i) => i.name === raw.name);
    if (!meta) throw new BadRequestError(`${where}: model "${model.name}" has no such input; it takes ${model.inputs.map((i) => `"${i.name}" ${i.datatype} [${i.shape.join(', ')}]`).join(', ')}`);
    if (seen.has(raw.name)) throw new BadRequestError(`${where} is given twice`);
    seen.add(raw.name);
    if (raw.datatype !== meta.datatype) throw new BadRequestError(`${where}: datatype ${JSON.stringify(raw.datatype)}, but the model takes ${meta.datatype}`);
    const shape = checkShape(raw.shape, where);
    const bad = fits(shape, meta.shape);
    if (bad !== -1)
      throw new BadRequestError(
        `${where}: shape [${shape.join(', ')}] does not fit the model's [${meta.shape.join(', ')}] (-1: any size)` +
          (bad === -2 ? `: rank ${shape.length}, expected ${meta.shape.length}` : `: dimension ${bad} must be ${meta.shape[bad]}`),
      );
    const count = numel(shape);
    const params = parameters(raw.parameters, where);
    let data: Float32Array;
    if (params.binary_data_size !== undefined) {
      const size = params.binary_data_size;
      if (!Number.isInteger(size) || (size as number) < 0) throw new BadRequestError(`${where}: binary_data_size must be a non-negative integer, got ${JSON.stringify(size)}`);
      if (headerLength === undefined) throw new BadRequestError(`${where}: binary_data_size is given but the Inference-Header-Content-Length header is missing`);
      if (raw.data !== undefined) throw new BadRequestError(`${where}: give either "data" or binary_data_size, not both`);
      const want = count * DATATYPE_BYTES.FP32!;
      if (size !== want) throw new BadRequestError(`${where}: binary_data_size ${size}, but shape [${shape.join(', ')}] of FP32 needs ${want} bytes`);
      if (offset + want > body.length) throw new BadRequestError(`${where}: the body ends ${offset + want - body.length} bytes short of its binary data`);
      // A copy: the Float32Array needs 4-byte alignment, which the body's bytes need not have.
      data = float32At(body, offset, want);
      offset += want;
    } else {
      data = flattenNumbers(raw.data, where, count);
    }
    inputs.push({ name: raw.name, shape, datatype: 'FP32', data });
  }
  if (offset !== body.length) throw new BadRequestError(`the body has ${body.length - offset} bytes after the JSON header and the binary inputs it announces`);
  for (const m of model.inputs) if (!seen.has(m.name)) throw new BadRequestError(`input "${m.name}" is missing (${m.datatype} [${m.shape.join(', ')}])`);

  const binaryDefault = reqParams.binary_data_output === true;
  let outputs: RequestedOutput[];
  if (req.outputs === undefined) outputs = model.outputs.map((o) => ({ name: o.name, binary: binaryDefault }));
  else {
    if (!Array.isArray(req.outputs)) throw new BadRequestError('"outputs" must be an array of {"name": ...}');
    outputs = req.outputs.map((raw, k) => {
      if (!isObject(raw) || typeof raw.name !== 'string') throw new BadRequestError(`outputs[${k}] must be an object with a "name"`);
      if (!model.outputs.some((o) => o.name === raw.name)) throw new BadRequestError(`output "${raw.name}": model "${model.name}" has no such output; it has ${model.outputs.map((o) => `"${o.name}"`).join(', ')}`);
      const p = parameters(raw.parameters, `output "${raw.name}"`);
      if (p.binary_data !== undefined && typeof p.binary_data !== 'boolean') throw new BadRequestError(`output "${raw.name}": binary_data must be true or false`);
      return { name: raw.name, binary: (p.binary_data as boolean | undefined) ?? binaryDefault };
    });
  }
  return { ...(req.id !== undefined ? { id: req.id as string } : {}), inputs, outputs };
}

/** The response body and headers: JSON, or a JSON header followed by the binary outputs. */
export function encodeInferResponse(r: { modelName: string; modelVersion: string; id?: string; outputs: InferOutput[] }): { body: Buffer; headers: Record<string, string> } {
  const blobs: Buffer[] = [];
  const outputs = r.outputs.map((o) => {
    if (!o.binary) return { name: o.name, datatype: 'FP32', shape: o.shape, data: Array.from(o.data) };
    const bytes = Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength);
    blobs.push(bytes);
    return { name: o.name, datatype: 'FP32', shape: o.shape, parameters: { binary_data_size: bytes.length } };
  });
  const json = Buffer.from(JSON.stringify({ model_name: r.modelName, model_version: r.modelVersion, ...(r.id !== undefined ? { id: r.id } : {}), outputs }));
  if (!blobs.length) return { body: json, headers: { 'Content-Type': 'application/json' } };
  return { body: Buffer.concat([json, ...blobs]), headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(json.length) } };
}

/** A binary request (client side: the benchmark, the tests): one FP32 input as raw bytes, outputs as asked. */
export function encodeBinaryInferRequest(input: { name: string; shape: number[]; data: Float32Array }, o: { id?: string; binaryOutput?: boolean; outputs?: string[] } = {}): { body: Buffer; headers: Record<string, string> } {
  const bytes = Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength);
  const header = {
    ...(o.id !== undefined ? { id: o.id } : {}),
    ...(o.binaryOutput ? { parameters: { binary_data_output: true } } : {}),
    inputs: [{ name: input.name, shape: input.shape, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }],
    ...(o.outputs ? { outputs: o.outputs.map((name) => ({ name })) } : {}),
  };
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, bytes]), headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(json.length) } };
}

export interface DecodedResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: { name: string; datatype: string; shape: number[]; data: Float32Array }[];
}

/** Reads a response (JSON or with binary outputs) into float32 arrays (client side). */
export function decodeInferResponse(body: Uint8Array, headerLength?: string | null): DecodedResponse {
  const n = headerLength ? Number(headerLength) : body.length;
  const json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, n).toString('utf8')) as {
    model_name: string;
    model_version?: string;
    id?: string;
    outputs: { name: string; datatype: string; shape: number[]; data?: number[]; parameters?: { binary_data_size?: number } }[];
  };
  let offset = n;
  const outputs = json.outputs.map((o) => {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) return { name: o.name, datatype: o.datatype, shape: o.shape, data: Float32Array.from(o.data ?? []) };
    const data = float32At(body, offset, size);
    offset += size;
    return { name: o.name, datatype: o.datatype, shape: o.shape, data };
  });
  return { ...json, outputs };
}
