/**
 * The one place where values a user gives are checked: numbers (options, flags) and tensors entering a backend.
 * Errors name the input (a flag such as `--threads`, an option such as `epochs`, a tensor such as `input`) and say
 * what would be accepted.
 */
import { EffnetError, InvalidSpecError } from './errors.js';
import type { Graph } from './graph.js';
import { numel, type Tensor, toFloat32 } from './tensor.js';

/** A tensor handed to a backend that cannot be used as it is: wrong rank, shape, size or values. */
export class InputError extends EffnetError {
  override name = 'InputError';
}

export interface NumberRule {
  /** Whole numbers only. */
  integer?: boolean;
  /** Inclusive bounds. */
  min?: number;
  max?: number;
  /** Exclusive lower bound (e.g. a learning rate > 0). */
  above?: number;
  /** Exclusive upper bound (e.g. a rate < 1). */
  below?: number;
}

/** "an integer >= 1", "a number in (0, 1)", ... */
export function describeRule(r: NumberRule): string {
  const what = r.integer ? 'an integer' : 'a number';
  const lo = r.min !== undefined ? `[${r.min}` : r.above !== undefined ? `(${r.above}` : undefined;
  const hi = r.max !== undefined ? `${r.max}]` : r.below !== undefined ? `${r.below})` : undefined;
  if (lo && hi) return `${what} in ${lo}, ${hi}`;
  if (r.min !== undefined) return `${what} >= ${r.min}`;
  if (r.above !== undefined) return `${what} > ${r.above}`;
  if (r.max !== undefined) return `${what} <= ${r.max}`;
  if (r.below !== undefined) return `${what} < ${r.below}`;
  return `a finite ${r.integer ? 'integer' : 'number'}`;
}

/** `value` if it is a finite number that obeys `rule`; otherwise InvalidSpecError naming `name`. */
export function checkNumber(name: string, value: unknown, rule: NumberRule = {}): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!rule.integer || Number.isInteger(value)) &&
    (rule.min === undefined || value >= rule.min) &&
    (rule.max === undefined || value <= rule.max) &&
    (rule.above === undefined || value > rule.above) &&
    (rule.below === undefined || value < rule.below);
  if (!ok) throw new InvalidSpecError(name, value, describeRule(rule));
  return value as number;
}

/** A number from text (a flag's value): the whole string must be a number; then checkNumber. */
export function parseNumber(name: string, text: string, rule: NumberRule = {}): number {
  const s = text.trim();
  // Number('') is 0 and Number('0x10') is 16: accept plain decimal notation only.
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s)) throw new InvalidSpecError(name, text, describeRule(rule));
  return checkNumber(name, Number(s), rule);
}

/** A comma-separated list of numbers ("0.08,1"), each obeying `rule`, with exactly `count` entries when given. */
export function parseNumberList(name: string, text: string, rule: NumberRule = {}, count?: number): number[] {
  const parts = text.split(',');
  const what = `${count ? `${count} ` : ''}comma-separated values, each ${describeRule(rule)}`;
  if (count !== undefined && parts.length !== count) throw new InvalidSpecError(name, text, what);
  return parts.map((p) => {
    try {
      return parseNumber(name, p, rule);
    } catch {
      throw new InvalidSpecError(name, text, what);
    }
  });
}

export interface TensorCheckOptions {
  /** Let NaN and infinities through (default false: they are an InputError naming the tensor). */
  allowNonFinite?: boolean;
}

/** Index of the first NaN or infinity, or -1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
}

/**
 * Checks an NCHW batch against a graph's input once, before it reaches any runtime: rank, channels, static size,
 * element count and (unless allowed) finite values. Any numeric dtype is converted to float32 (float16/bfloat16 from
 * their bits, int64 by value); the result is what the backend runs.
 */
export function checkGraphInput(graph: Graph, input: Tensor, o: TensorCheckOptions = {}): Tensor & { dtype: 'float32'; data: Float32Array } {
  const inp = graph.inputs[0]!;
  const name = `input "${inp.name}"`;
  const want = `[N, ${inp.channels}, ${inp.height ?? 'H'}, ${inp.width ?? 'W'}]`;
  if (!input || typeof input !== 'object' || !Array.isArray(input.shape)) throw new InputError(`${name} must be a tensor {dtype, shape, data}, got ${typeof input}`);
  if (input.shape.length !== 4) throw new InputError(`${name} must be rank 4 NCHW ${want}, got shape [${input.shape.join(', ')}]`);
  const [n, c, h, w] = input.shape as [number, number, number, number];
  if (c !== inp.channels || (inp.height !== null && h !== inp.height) || (inp.width !== null && w !== inp.width) || !(n >= 1 && h >= 1 && w >= 1))
    throw new InputError(`${name} must have shape ${want}, got [${input.shape.join(', ')}]${w === inp.channels && c !== inp.channels ? ' (NHWC? transpose to NCHW)' : ''}`);
  if (input.data.length !== numel(input.shape)) throw new InputError(`${name} has ${input.data.length} values, shape [${input.shape.join(', ')}] needs ${numel(input.shape)}`);
  const data = toFloat32(input);
  if (!o.allowNonFinite) {
    const bad = firstNonFinite(data);
    if (bad >= 0) throw new InputError(`${name} holds ${data[bad]} at flat index ${bad}${input.dtype !== 'float32' ? ` (after converting from ${input.dtype})` : ''}; clean the data, or allow non-finite values explicitly (allowNonFinite / --allow-nan)`);
  }
  return { dtype: 'float32', shape: [...input.shape], data };
}
