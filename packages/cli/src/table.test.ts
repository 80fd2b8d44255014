import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { formatTable, groupThousands } from './table.js';

describe('groupThousands', () => {
  test.prop([fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }), fc.constantFrom(0, -0, 0.0005, -0.0005, 1.0005, 0.0015, -0.0004, 999.9996, 1e21, -1e21, Number.NaN, Infinity))], { numRuns: 2000 })(
    "prints what toLocaleString('en-US') prints",
    (n) => {
      expect(groupThousands(n)).toBe(n.toLocaleString('en-US'));
    },
  );

  it('numbers in a table are grouped and right-aligned', () => {
    expect(formatTable(['name', 'params'], [['b0', 5288548], ['b7', 66347960]]).split('\n')).toEqual(['name      params', '----  ----------', 'b0     5,288,548', 'b7    66,347,960']);
  });
});
