import { floatToHalf } from '@effnet/core';
import { DataType, type OnnxDataType, type OnnxNode, type OnnxTensor } from './onnx-proto.js';

export function floatBytes(values: Float32Array | number[], fp16: boolean): Uint8Array {
  if (!fp16) {
    const f = values instanceof Float32Array ? values : Float32Array.from(values);
    return new Uint8Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
  }
  const h = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) h[i] = floatToHalf(values[i]!);
  return new Uint8Array(h.buffer);
}

export function int64Bytes(values: number[]): Uint8Array {
  return new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
}

/** ONNX nodes and initializers as they are emitted, with constants shared by every node that needs the same values. */
export class OnnxWriter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private consts = new Map<string, string>();

  constructor(
    readonly floatType: OnnxDataType = DataType.FLOAT,
    readonly fp16 = false,
  ) {}

  op(opType: string, name: string, inputs: string[], outputs: string[], attributes?: OnnxNode['attributes'], docString?: string): void {
    this.nodes.push({ opType, name, inputs, outputs, ...(attributes ? { attributes } : {}), ...(docString ? { docString } : {}) });
  }

  /** An initializer shared by every node that needs the same values. */
  private constant(dataType: OnnxDataType, dims: number[], values: number[], raw: () => Uint8Array): string {
    const key = `${dataType}:${dims.join('x')}:${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = `const_${this.consts.size}`;
      this.consts.set(key, name);
      this.initializers.push({ name, dataType, dims, raw: raw() });
    }
    return name;
  }

  /** A constant in the model's float type. */
  floatConst(values: number[], dims: number[] = []): string {
    return this.constant(this.floatType, dims, values, () => floatBytes(values, this.fp16));
  }

  /** A float32 constant whatever the model's type (Resize scales). */
  float32Const(values: number[]): string {
    return this.constant(DataType.FLOAT, [values.length], values, () => floatBytes(values, false));
  }

  int64Const(values: number[]): string {
    return this.constant(DataType.INT64, [values.length], values, () => int64Bytes(values));
  }
}
