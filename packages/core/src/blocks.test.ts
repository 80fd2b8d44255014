import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { type BlockSpec, BlockStringError, decodeBlock, encodeBlock, InvalidSpecError } from './index.js';

const activation = fc.constantFrom('silu', 'relu', 'relu6', 'gelu', 'hardSwish') as fc.Arbitrary<NonNullable<BlockSpec['act']>>;
const block: fc.Arbitrary<BlockSpec> = fc
  .record(
    {
      type: fc.constantFrom('mbconv' as const, 'fused' as const),
      kernel: fc.integer({ min: 0, max: 4 }).map((k) => 2 * k + 1),
      stride: fc.integer({ min: 1, max: 4 }),
      expand: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.double({ min: 1, max: 8, noNaN: true })),
      out: fc.integer({ min: 1, max: 4096 }),
      seRatio: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
      act: activation,
      skip: fc.boolean(),
      dropPath: fc.double({ min: 0, max: 0.99, noNaN: true }),
    },
    { requiredKeys: ['type', 'kernel', 'stride', 'expand', 'out', 'seRatio', 'skip'] },
  )
  .filter((b) => !(b.type === 'fused' && b.expand === 1 && b.seRatio > 0));

describe('block string codec', () => {
  test.prop([block, fc.integer({ min: 1, max: 50 })], { numRuns: 500 })('decode(encode(x)) == x', (b, repeats) => {
    const decoded = decodeBlock(encodeBlock(b, repeats));
    expect(decoded).toEqual({ block: b, repeats });
  });

  it('reads timm strings', () => {
    expect(decodeBlock('ir_r2_k3_s2_e6_c24_se0.25')).toEqual({
      block: { type: 'mbconv', kernel: 3, stride: 2, expand: 6, out: 24, seRatio: 0.25, skip: true },
      repeats: 2,
    });
    expect(decodeBlock('ds_r1_k3_s1_e1_c16_se0.25').block.expand).toBe(1);
    expect(decodeBlock('er_r4_k3_s2_e4_c48').block.type).toBe('fused');
    expect(decodeBlock('cn_r2_k3_s1_e1_c24_skip').block).toEqual({ type: 'fused', kernel: 3, stride: 1, expand: 1, out: 24, seRatio: 0, skip: true });
    expect(decodeBlock('ir_r1_k3_s1_e6_c16_nre_noskip').block).toMatchObject({ act: 'relu', skip: false });
  });

  it.each([
    ['zz_r1_k3_s1_e1_c16', /unknown block type "zz"/],
    ['ir_r1_k3_s1_c16', /missing "e" token/],
    ['ir_k3_s1_e6_c16', /missing "r" token/],
    ['ir_r1_k3_s1_e6_c16_q7', /unknown token "q7"/],
    ['ir_r1_k3_s1_e6_c16_nxx', /unknown activation code "xx"/],
    ['ir_r1_k4_s1_e6_c16', /kernel: 4/],
    ['ir_r1_k3_k5_s1_e6_c16', /given twice/],
    ['fir_r1_k3_s1_e1_c16_se0.25', /no squeeze-excite/],
    ['ir_r1_kx_s1_e6_c16', /needs a number/],
  ])('rejects %s', (s, msg) => {
    expect(() => decodeBlock(s)).toThrow(BlockStringError);
    expect(() => decodeBlock(s)).toThrow(msg);
  });

  it('encode validates the record and names the field', () => {
    const bad = { type: 'mbconv', kernel: 3, stride: 0, expand: 6, out: 24, seRatio: 0.25, skip: true } as BlockSpec;
    expect(() => encodeBlock(bad)).toThrow(InvalidSpecError);
    expect(() => encodeBlock(bad)).toThrow(/block.stride: 0/);
  });
});
