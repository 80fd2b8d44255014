/** Byte-level mutations for fuzzing the file parsers: set a byte, truncate, insert or delete a few bytes. */
import { fc } from '@fast-check/vitest';

export type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 9 }) }) },
);

/** A mutated copy of `bytes` (positions wrap around its current length). */
export function mutate(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = bytes.slice();
  for (const m of mutations) {
    const at = b.length ? m.at % (b.length + 1) : 0;
    if (m.kind === 'set') {
      if (b.length) b[m.at % b.length] = m.value;
    } else if (m.kind === 'truncate') b = b.slice(0, at);
    else if (m.kind === 'insert') b = new Uint8Array([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
    else b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + m.count)]);
  }
  return b;
}
