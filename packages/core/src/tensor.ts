/** Element types a tensor file may hold. float16/bfloat16 keep their raw bits in a Uint16Array. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8';

export type TensorData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

/** A dense, C-ordered tensor. */
export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

/** Three numbers, one per RGB channel: a colour, or a per-channel mean or std. */
export type Rgb = [number, number, number];

/** Named tensors, as in a state_dict. Insertion order is kept. */
export type TensorMap = Map<string, Tensor>;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function float32Tensor(shape: number[], data?: Float32Array): Tensor {
  const n = numel(shape);
  if (data && data.length !== n) throw new RangeError(`float32Tensor: data has ${data.length} elements, shape [${shape.join(', ')}] needs ${n}`);
  return { dtype: 'float32', shape, data: data ?? new Float32Array(n) };
}

/** IEEE half bits -> float. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> IEEE half bits, round to nearest even. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** bfloat16 bits -> float. */
export function bfloat16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}

/** float -> bfloat16 bits, round to nearest even. */
export function floatToBfloat16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Any numeric tensor as float32 (int64 values beyond 2^24 lose precision, as in any float cast). */
export function toFloat32(t: Tensor): Float32Array {
  const { data } = t;
  switch (t.dtype) {
    case 'float32':
      return data as Float32Array;
    case 'float16': {
      const src = data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]!);
      return out;
    }
    case 'bfloat16': {
      const src = data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = bfloat16ToFloat(src[i]!);
      return out;
    }
    case 'int64': {
      const src = data as BigInt64Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]!);
      return out;
    }
    case 'float64':
    case 'int32':
    case 'uint8':
      return Float32Array.from(data as Float64Array | Int32Array | Uint8Array);
  }
}

/**
 * torchvision's Normalize for one value, rounded to float32 at each step as torch computes it: (x - mean) / std.
 * Every normalization in effnet (images decoded here, tensors handed in) goes through this.
 */
export function normalizeValue(x: number, mean: number, std: number): number {
  return Math.fround(Math.fround(x) - Math.fround(mean)) / Math.fround(std);
}
