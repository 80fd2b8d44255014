import { deriveSeed, InvalidSpecError, seededRandom } from '@effnet/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { augmentForTraining, flipHorizontal, randomResizedCropParams, resizedCrop, type RgbImage } from './augment.js';
import { generateShape } from './shapes.js';

/** A source of "uniform" draws that replays the given values. */
function replay(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('ran out of draws');
    return values[i++]!;
  };
}

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 255) / (width - 1);
      data[o + 1] = (y * 255) / (height - 1);
      data[o + 2] = 128;
    }
  }
  return { data, width, height };
}

describe('randomResizedCropParams (torchvision get_params)', () => {
  it('reproduces a hand-computed draw', () => {
    // area 10000 * (0.08 + 0.92 * 0.5) = 5400, ratio exp(mid of log range) = 1, w = h = round(73.48) = 73,
    // top = floor(0.25 * 28) = 7, left = floor(0.75 * 28) = 21.
    expect(randomResizedCropParams(100, 100, replay(0.5, 0.5, 0.25, 0.75))).toEqual({ top: 7, left: 21, height: 73, width: 73 });
  });

  it("rounds halves to even, as Python's round", () => {
    // 17 x 17, scale 1/4: area 72.25, ratio 1: sqrt = 8.5 exactly, which Python rounds to 8.
    const box = randomResizedCropParams(17, 17, replay(0, 0, 0, 0), { scale: [0.25, 0.25], ratio: [1, 1] });
    expect(box).toEqual({ top: 0, left: 0, height: 8, width: 8 });
  });

  it('falls back to a centre crop clamped to the ratio range after ten misses', () => {
    const misses = () => 0.999; // scale [2, 3] never fits
    // 100 wide x 50 high: ratio 2 > 4/3, so h = 50, w = round(50 * 4/3) = 67, left = (100 - 67) // 2 = 16.
    expect(randomResizedCropParams(50, 100, misses, { scale: [2, 3] })).toEqual({ top: 0, left: 16, height: 50, width: 67 });
    // 30 wide x 100 high: ratio 0.3 < 3/4, so w = 30, h = round(30 / 0.75) = 40, top = 30.
    expect(randomResizedCropParams(100, 30, misses, { scale: [2, 3] })).toEqual({ top: 30, left: 0, height: 40, width: 30 });
    // In range: the whole image.
    expect(randomResizedCropParams(60, 70, misses, { scale: [2, 3] })).toEqual({ top: 0, left: 0, height: 60, width: 70 });
    // Exactly ten tries of two draws each before the fallback.
    let draws = 0;
    randomResizedCropParams(50, 50, () => (draws++, 0.999), { scale: [2, 3] });
    expect(draws).toBe(20);
  });

  it('always returns a box inside the image, with area and ratio in range when a try succeeds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 600 }), fc.integer(), (h, w, seed) => {
        const box = randomResizedCropParams(h, w, seededRandom(seed));
        expect(box.top).toBeGreaterThanOrEqual(0);
        expect(box.left).toBeGreaterThanOrEqual(0);
        expect(box.height).toBeGreaterThanOrEqual(1);
        expect(box.width).toBeGreaterThanOrEqual(1);
        expect(box.top + box.height).toBeLessThanOrEqual(h);
        expect(box.left + box.width).toBeLessThanOrEqual(w);
        if (h >= 100 && w >= 100 && box.width !== w && box.height !== h) {
          // Rounding moves each side by at most half a pixel.
          expect((box.width + 1) * (box.height + 1)).toBeGreaterThanOrEqual(0.08 * h * w);
          expect((box.width + 1) / Math.max(box.height - 1, 1)).toBeGreaterThanOrEqual(3 / 4);
          expect((box.width - 1) / (box.height + 1)).toBeLessThanOrEqual(4 / 3);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('rejects unusable ranges', () => {
    expect(() => randomResizedCropParams(10, 10, () => 0.5, { scale: [0.5, 0.1] })).toThrow(InvalidSpecError);
    expect(() => randomResizedCropParams(10, 10, () => 0.5, { ratio: [0, 1] })).toThrow(/positive numbers/);
  });
});

describe('augmentForTraining', () => {
  const image = generateShape(1, 4, { size: 80 });

  it('returns size x size RGB, the same for the same seed', async () => {
    const a = await augmentForTraining(image, { size: 48, seed: 123 });
    const b = await augmentForTraining(image, { size: 48, seed: 123 });
    expect([a.width, a.height, a.data.length]).toEqual([48, 48, 48 * 48 * 3]);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(b.box).toEqual(a.box);
    const c = await augmentForTraining(image, { size: 48, seed: 124 });
    expect(Buffer.from(c.data).equals(Buffer.from(a.data))).toBe(false);
  });

  it('flips after cropping: p=1 and p=0 give mirror images of the same crop', async () => {
    const img = gradient(40, 30);
    const flipped = await augmentForTraining(img, { size: 24, seed: 9, hflip: 1 });
    const plain = await augmentForTraining(img, { size: 24, seed: 9, hflip: 0 });
    expect(flipped.box).toEqual(plain.box);
    expect([flipped.flipped, plain.flipped]).toEqual([true, false]);
    expect(Buffer.from(flipHorizontal(plain).data).equals(Buffer.from(flipped.data))).toBe(true);
  });

  it('flips about half the time', async () => {
    const img = gradient(8, 8);
    let flips = 0;
    for (let i = 0; i < 200; i++) if ((await augmentForTraining(img, { size: 4, seed: deriveSeed(0, 0, i) })).flipped) flips++;
    expect(flips).toBeGreaterThan(70);
    expect(flips).toBeLessThan(130);
  });

  it('crops the right region: a full-image crop keeps the corners where they were', async () => {
    const img = gradient(64, 64);
    const out = await resizedCrop(img, { top: 0, left: 32, height: 64, width: 32 }, 32);
    // Right half, squeezed horizontally: red ramps from ~128 to 255 left to right, green top to bottom.
    expect(out.data[0]!).toBeGreaterThan(120);
    expect(out.data[0]!).toBeLessThan(145);
    expect(out.data[(31 * 32 + 31) * 3]!).toBeGreaterThan(245);
    expect(out.data[(31 * 32 + 31) * 3 + 1]!).toBeGreaterThan(245);
    await expect(resizedCrop(img, { top: 0, left: 40, height: 64, width: 32 }, 32)).rejects.toThrow(/inside the 64x64 image/);
  });

  it('says how to fix input that is not RGB', async () => {
    const rgba = { data: new Uint8Array(4 * 4 * 4), width: 4, height: 4 };
    await expect(augmentForTraining(rgba, { size: 4, seed: 0 })).rejects.toThrow(/convert grey or RGBA images to RGB/);
    await expect(augmentForTraining(gradient(4, 4), { size: 4, seed: 0, hflip: 2 })).rejects.toThrow(/probability/);
  });

  it('mirrors exactly', () => {
    const img = { data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), width: 2, height: 2 };
    expect([...flipHorizontal(img).data]).toEqual([4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9]);
  });
});
