import { InvalidSpecError } from '@effnet/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Image8, resizeImage } from './resize.js';

const INTERPOLATIONS = ['bicubic', 'bilinear', 'nearest'] as const;

/** An arbitrary small image with 1-4 channels and its channel count. */
const image = (maxSide = 24) =>
  fc
    .record({ width: fc.integer({ min: 1, max: maxSide }), height: fc.integer({ min: 1, max: maxSide }), channels: fc.integer({ min: 1, max: 4 }) })
    .chain(({ width, height, channels }) =>
      fc.uint8Array({ minLength: width * height * channels, maxLength: width * height * channels }).map((data) => ({ image: { data, width, height } as Image8, channels })),
    );
const side = fc.integer({ min: 1, max: 40 });
const interpolation = fc.constantFrom(...INTERPOLATIONS);

describe('resizeImage (Pillow-compatible)', () => {
  it('returns exactly the requested size', () => {
    fc.assert(
      fc.property(image(), side, side, interpolation, ({ image, channels }, w, h, interp) => {
        const out = resizeImage(image, w, h, interp, undefined, channels);
        expect(out.width).toBe(w);
        expect(out.height).toBe(h);
        expect(out.data.length).toBe(w * h * channels);
      }),
    );
  });

  it('keeps a constant image constant', () => {
    fc.assert(
      fc.property(side, side, side, side, fc.integer({ min: 0, max: 255 }), interpolation, (w0, h0, w, h, v, interp) => {
        const out = resizeImage({ data: new Uint8Array(w0 * h0 * 3).fill(v), width: w0, height: h0 }, w, h, interp);
        expect(out.data.every((x) => x === v)).toBe(true);
      }),
    );
  });

  it('is the identity at the same size', () => {
    fc.assert(
      fc.property(image(), interpolation, ({ image, channels }, interp) => {
        expect(resizeImage(image, image.width, image.height, interp, undefined, channels).data).toEqual(image.data);
      }),
    );
  });

  it('computes a window of the output exactly as resizing everything and cropping', () => {
    fc.assert(
      fc.property(image(), side, side, interpolation, fc.nat(), fc.nat(), fc.nat(), fc.nat(), ({ image, channels }, w, h, interp, a, b, c, d) => {
        const full = resizeImage(image, w, h, interp, undefined, channels);
        // A window that may stick out of the image by up to 3 pixels on each side.
        const left = (a % (w + 6)) - 3;
        const top = (b % (h + 6)) - 3;
        const width = 1 + (c % (w + 3));
        const height = 1 + (d % (h + 3));
        const win = resizeImage(image, w, h, interp, { left, top, width, height }, channels);
        for (let y = 0; y < height; y++) {
          for (let x = 0; x < width; x++) {
            for (let ch = 0; ch < channels; ch++) {
              const sx = left + x;
              const sy = top + y;
              const expected = sx >= 0 && sx < w && sy >= 0 && sy < h ? full.data[(sy * w + sx) * channels + ch] : 0;
              expect(win.data[(y * width + x) * channels + ch]).toBe(expected);
            }
          }
        }
      }),
    );
  });

  it('flips a monotone ramp to a monotone ramp (bilinear and nearest never overshoot)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 64 }), side, fc.constantFrom('bilinear', 'nearest') as fc.Arbitrary<'bilinear' | 'nearest'>, (w0, w, interp) => {
        const data = Uint8Array.from({ length: w0 }, (_, i) => Math.round((i * 255) / (w0 - 1)));
        const out = resizeImage({ data, width: w0, height: 1 }, w, 1, interp, undefined, 1).data;
        for (let i = 1; i < out.length; i++) expect(out[i]!).toBeGreaterThanOrEqual(out[i - 1]!);
      }),
    );
  });

  it('matches hand-computed Pillow values on a small case', () => {
    // 4 -> 2 pixels, bilinear: support 2 (stretched by the factor 2), centres 1 and 3, weights (1, 3, 3, 1) / 8 over
    // the pixels in reach; Pillow's first output reads pixels 0-2 only: (3*10 + 3*20 + 1*30) / 7.
    const out = resizeImage({ data: Uint8Array.from([10, 20, 30, 40]), width: 4, height: 1 }, 2, 1, 'bilinear', undefined, 1).data;
    expect([...out]).toEqual([Math.round((3 * 10 + 3 * 20 + 30) / 7), Math.round((20 + 3 * 30 + 3 * 40) / 7)]);
    // Nearest 3 -> 2: source positions 0.75 and 2.25 -> pixels 0 and 2.
    expect([...resizeImage({ data: Uint8Array.from([1, 2, 3]), width: 3, height: 1 }, 2, 1, 'nearest', undefined, 1).data]).toEqual([1, 3]);
  });

  it('rejects sizes and buffers that do not fit', () => {
    const img = { data: new Uint8Array(12), width: 2, height: 2 };
    expect(() => resizeImage(img, 0, 2, 'bicubic')).toThrow(InvalidSpecError);
    expect(() => resizeImage(img, 2.5, 2, 'bicubic')).toThrow(/positive integer width and height/);
    expect(() => resizeImage({ ...img, data: new Uint8Array(11) }, 2, 2, 'bicubic')).toThrow(/2x2 pixels of 3 channels need 12 bytes/);
    expect(() => resizeImage(img, 2, 3, 'lanczos' as never)).toThrow(/'bicubic', 'bilinear' or 'nearest'/);
  });
});
