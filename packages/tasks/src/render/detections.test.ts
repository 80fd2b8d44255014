import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOX_COLOURS, boxColour, defaultLineWidth, detectionsPng, detectionsSvg } from './detections.js';
import { RenderError, svgTextRenders } from './charts.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'effnet-render-det-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const grey = (width: number, height: number) => ({ data: new Uint8Array(width * height * 3).fill(128), width, height });

async function pixels(file: string) {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { at: (x: number, y: number) => [0, 1, 2].map((c) => data[(y * info.width + x) * info.channels + c]!), width: info.width, height: info.height };
}

describe('boxColour', () => {
  it("gives class id k tab10's colour (k - 1) mod 10, for any id", () => {
    expect(boxColour(1)).toEqual([31, 119, 180]);
    expect(boxColour(11)).toEqual(boxColour(1));
    expect(boxColour()).toEqual(BOX_COLOURS[0]);
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), (k) => {
        expect(BOX_COLOURS).toContainEqual(boxColour(k));
      }),
    );
  });
});

describe('detectionsPng', () => {
  it('frames each box inside its edges in its class colour and leaves the rest of the image as it was', async () => {
    const file = join(dir, 'boxes.png');
    const r = await detectionsPng(
      grey(120, 80),
      [
        { box: [10, 20, 50, 60], label: 'cat', score: 0.9, classId: 1 },
        { box: [60, 5, 200, 40], label: 'dog', score: 0.5, classId: 3 },
      ],
      file,
      { text: false, lineWidth: 2 },
    );
    expect(r).toEqual({ file, width: 120, height: 80, text: false });
    const p = await pixels(file);
    expect([p.width, p.height]).toEqual([120, 80]);
    expect(p.at(10, 40)).toEqual([31, 119, 180]);
    expect(p.at(49, 40)).toEqual([31, 119, 180]);
    expect(p.at(30, 21)).toEqual([31, 119, 180]);
    expect(p.at(30, 40)).toEqual([128, 128, 128]);
    expect(p.at(9, 40)).toEqual([128, 128, 128]);
    // The second box reaches past the image: clipped, its right edge on the image's last column.
    expect(p.at(119, 20)).toEqual([44, 160, 44]);
    expect(p.at(100, 70)).toEqual([128, 128, 128]);
  });

  it('draws a label tag in the class colour above the box where text renders', async () => {
    const text = await svgTextRenders();
    const svg = detectionsSvg(200, 100, [{ box: [40, 50, 120, 90], label: 'a<b', score: 0.25, classId: 2 }], { text: true });
    expect(svg).toContain('a&lt;b 0.25');
    if (!text) return;
    const file = join(dir, 'tag.png');
    await detectionsPng(grey(200, 100), [{ box: [40, 50, 120, 90], label: 'person', score: 0.87, classId: 2 }], file, { text: true });
    const p = await pixels(file);
    // The tag sits on the box's top edge, starting at its left; its background is the class colour.
    expect(p.at(41, 50 - 3)).toEqual([255, 127, 14]);
    expect(p.at(41, 20)).toEqual([128, 128, 128]);
  });

  it('names what it cannot draw', async () => {
    await expect(detectionsPng({ data: new Uint8Array(5), width: 2, height: 2 }, [], join(dir, 'x.png'))).rejects.toThrow(RenderError);
    await expect(detectionsPng(grey(4, 4), [{ box: [0, 0, Number.NaN, 1], label: 'x' }], join(dir, 'x.png'), { text: false })).rejects.toThrow(/boxes\[0\]: .*four finite numbers/);
    await expect(detectionsPng(grey(4, 4), [], join(dir, 'x.png'), { lineWidth: 0 })).rejects.toThrow(/lineWidth: 0 is not a positive number/);
    expect(defaultLineWidth(100, 100)).toBe(2);
    expect(defaultLineWidth(1000, 3000)).toBe(12);
  });
});
