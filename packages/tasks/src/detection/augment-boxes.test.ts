import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { noiseImage } from '../../../../testing/images.js';
import { resizeImage } from '../images/resize.js';
import { boxesToOriginal, detectionTrainTransform, EFFDET_FILL_COLOR, flipDetection, imageInfoFor, randomResizePad, resizePad, type BoxedImage } from './augment-boxes.js';
import type { Box } from './coco-dataset.js';


/** An image 8-120 px a side with 0-8 boxes inside it (some tiny). */
const sample: fc.Arbitrary<BoxedImage> = fc
  .record({ w: fc.integer({ min: 8, max: 120 }), h: fc.integer({ min: 8, max: 120 }), seed: fc.nat() })
  .chain(({ w, h, seed }) =>
    fc
      .array(
        fc.record({ x: fc.double({ min: 0, max: w - 0.5, noNaN: true }), y: fc.double({ min: 0, max: h - 0.5, noNaN: true }), bw: fc.double({ min: 0.1, max: w, noNaN: true }), bh: fc.double({ min: 0.1, max: h, noNaN: true }), c: fc.nat(5) }),
        { maxLength: 8 },
      )
      .map((bs) => ({
        image: noiseImage(w, h, seed),
        boxes: bs.map((b): Box => [b.x, b.y, Math.min(b.x + b.bw, w), Math.min(b.y + b.bh, h)]),
        classes: bs.map((b) => b.c),
      })),
  );

const size = fc.oneof(fc.integer({ min: 16, max: 96 }), fc.tuple(fc.integer({ min: 16, max: 96 }), fc.integer({ min: 16, max: 96 })));

function expectInside(out: BoxedImage): void {
  expect(out.boxes.length).toBe(out.classes.length);
  for (const [x1, y1, x2, y2] of out.boxes) {
    expect(0 <= x1 && x1 < x2 && x2 <= out.image.width).toBe(true);
    expect(0 <= y1 && y1 < y2 && y2 <= out.image.height).toBe(true);
  }
}

describe('box-preserving transforms', () => {
  it('flipping twice is the identity, for pixels and boxes', () => {
    fc.assert(
      fc.property(sample, (s) => {
        const back = flipDetection(flipDetection(s));
        expect(back.image.data).toEqual(s.image.data);
        back.boxes.forEach((b, i) => b.forEach((v, k) => expect(v).toBeCloseTo(s.boxes[i]![k]!, 9)));
        expect(back.classes).toEqual(s.classes);
      }),
      { numRuns: 30 },
    );
  });

  it('the training transform keeps boxes inside the output and drops boxes the crop empties', () => {
    fc.assert(
      fc.property(sample, size, fc.nat(), (s, sz, seed) => {
        const out = detectionTrainTransform(s, { size: sz, seed });
        const [th, tw] = typeof sz === 'number' ? [sz, sz] : sz;
        expect([out.image.width, out.image.height]).toEqual([tw, th]);
        expectInside(out);
        // Content region: boxes are clipped to the pasted image, not to the padding.
        const { info } = out;
        for (const [, , x2, y2] of out.boxes) {
          expect(x2).toBeLessThanOrEqual(Math.min(info.scaledWidth, tw));
          expect(y2).toBeLessThanOrEqual(Math.min(info.scaledHeight, th));
        }
        // A box survives exactly when its scaled, shifted and clipped version has an area.
        const src = out.flipped ? flipDetection(s) : s;
        const survivors = src.boxes.filter(([x1, y1, x2, y2]) => {
          const bw = Math.min(info.scaledWidth, tw);
          const bh = Math.min(info.scaledHeight, th);
          const c = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
          return c(x1 * info.scale - info.offsetX, bw) < c(x2 * info.scale - info.offsetX, bw) && c(y1 * info.scale - info.offsetY, bh) < c(y2 * info.scale - info.offsetY, bh);
        });
        expect(out.boxes.length).toBe(survivors.length);
      }),
      { numRuns: 60 },
    );
  });

  it('the eval letterbox maps boxes forward and back to the originals', () => {
    fc.assert(
      fc.property(sample, size, (s, sz) => {
        const out = resizePad(s, { size: sz });
        expectInside(out);
        // Boxes inside the image are never clipped by the letterbox (up to the truncated scaled size), so all come back.
        const back = boxesToOriginal(out.boxes, out.info);
        const kept = s.boxes.filter(([x1, y1, x2, y2]) => Math.min(x2 * out.info.scale, out.info.scaledWidth) > x1 * out.info.scale && Math.min(y2 * out.info.scale, out.info.scaledHeight) > y1 * out.info.scale);
        expect(back.length).toBe(kept.length);
        back.forEach((b, i) => {
          const orig = kept[i]!;
          // Exact but for the right/bottom edges the truncated scaled size can cut (under 1 model pixel).
          expect(Math.abs(b[0] - orig[0])).toBeLessThan(1e-9 * (1 + orig[0]));
          expect(Math.abs(b[1] - orig[1])).toBeLessThan(1e-9 * (1 + orig[1]));
          expect(b[2]).toBeLessThanOrEqual(orig[2] + 1e-9 * (1 + orig[2]));
          expect(orig[2] - b[2]).toBeLessThan(1 / out.info.scale + 1e-9);
          expect(b[3]).toBeLessThanOrEqual(orig[3] + 1e-9 * (1 + orig[3]));
          expect(orig[3] - b[3]).toBeLessThan(1 / out.info.scale + 1e-9);
        });
        expect(imageInfoFor(out.info)).toEqual({ imgScale: 1 / out.info.scale, imgSize: [s.image.width, s.image.height] });
      }),
      { numRuns: 60 },
    );
  });

  it("letterboxes as effdet's ResizePad: content top-left, the fill colour elsewhere", () => {
    const image = noiseImage(100, 50, 1);
    const out = resizePad({ image, boxes: [[10, 10, 90, 40]], classes: [3] }, { size: 64 });
    // scale min(64/50, 64/100) = 0.64 -> 64 x 32 content.
    expect(out.info).toMatchObject({ scale: 0.64, scaledWidth: 64, scaledHeight: 32, offsetX: 0, offsetY: 0 });
    const content = resizeImage(image, 64, 32, 'bicubic');
    expect(out.image.data.subarray(0, 64 * 32 * 3)).toEqual(content.data);
    expect([...out.image.data.subarray(64 * 40 * 3, 64 * 40 * 3 + 3)]).toEqual([...EFFDET_FILL_COLOR]);
    expect(EFFDET_FILL_COLOR).toEqual([124, 116, 104]);
    expect(out.boxes[0]!.map((v) => Math.round(v * 1e9) / 1e9)).toEqual([6.4, 6.4, 57.6, 25.6]);
  });

  it("draws its parameters in effdet's order (hand-computed)", () => {
    const draws = [0.5, 0.3, 0.99, 0.7];
    let i = 0;
    const image = noiseImage(100, 50, 2);
    const out = randomResizePad({ image, boxes: [[0, 0, 100, 50]], classes: [0] }, { size: 64, random: () => draws[i++]! });
    // factor 0.1 + 1.9 * 0.5 = 1.05; scale = min(67.2 / 50, 67.2 / 100) = 0.672 -> 67 x 33;
    // offset y = int(max(0, 33 - 64) * 0.3) = 0, x = int((67 - 64) * 0.99) = 2; 0.7 -> bicubic.
    expect(out.info).toMatchObject({ scaledWidth: 67, scaledHeight: 33, offsetX: 2, offsetY: 0 });
    expect(out.info.scale).toBeCloseTo(0.672, 12);
    const content = resizeImage(image, 67, 33, 'bicubic', { left: 2, top: 0, width: 64, height: 33 });
    expect(out.image.data.subarray(0, 64 * 33 * 3)).toEqual(content.data);
    expect(out.boxes).toEqual([[0, 0, 64, 33]]);
    expect(i).toBe(4);
  });

  it('is a function of the seed', () => {
    const s: BoxedImage = { image: noiseImage(40, 30, 3), boxes: [[5, 5, 20, 25]], classes: [1] };
    const a = detectionTrainTransform(s, { size: 32, seed: 7 });
    const b = detectionTrainTransform(s, { size: 32, seed: 7 });
    expect(a.image.data).toEqual(b.image.data);
    expect(a.boxes).toEqual(b.boxes);
  });
});
