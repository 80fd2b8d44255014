/**
 * Seeds derived from a base seed and integer coordinates (index, epoch, class, ...), so that every
 * random draw in the data pipeline is a pure function of its coordinates and independent of the order
 * in which items are produced.
 */

/** murmur3's 32-bit finaliser: a bijection on uint32 that spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uint32 seed for `seededRandom`, determined by `seed` and the integer `parts` (in order). */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  for (const p of parts) h = fmix32((h ^ Math.imul((p >>> 0) + 0x7f4a7c15, 0x9e3779b1)) >>> 0);
  return h;
}
