import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEAT_RAMP, RenderError, confusionHeatmapPng, contactSheetLayout, contactSheetPng, heatColor, heatmapLayout, svgTextRenders } from './charts.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'effnet-render-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readRgb(file: string): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function pixel(img: { data: Buffer; width: number; channels: number }, x: number, y: number): number[] {
  const o = (y * img.width + x) * img.channels;
  return [img.data[o]!, img.data[o + 1]!, img.data[o + 2]!];
}

describe('heatColor', () => {
  it('ramps from white to dark blue through the stops', () => {
    expect(heatColor(0)).toEqual([255, 255, 255]);
    expect(heatColor(1)).toEqual([8, 48, 107]);
    expect(heatColor(0.5)).toEqual(HEAT_RAMP[4]);
    expect(heatColor(-1)).toEqual([255, 255, 255]);
    expect(heatColor(Number.NaN)).toEqual([255, 255, 255]);
    // Blue dominates and brightness falls monotonically.
    let last = Infinity;
    for (let t = 0; t <= 1; t += 0.05) {
      const [r, g, b] = heatColor(t);
      expect(b).toBeGreaterThanOrEqual(r);
      expect(r + g + b).toBeLessThanOrEqual(last);
      last = r + g + b;
    }
  });
});

describe('confusionHeatmapPng', () => {
  const classes = ['circle', 'cross', 'ring', 'square & <co>'];
  const confusion = [
    [8, 2, 0, 0],
    [0, 5, 5, 0],
    [0, 0, 0, 0],
    [1, 0, 0, 3],
  ];

  it('writes a PNG of the layout size with row-normalised cell colours', async () => {
    const file = join(dir, 'heat.png');
    const out = await confusionHeatmapPng(confusion, classes, file);
    const meta = await sharp(file).metadata();
    expect(meta.format).toBe('png');
    const L = heatmapLayout(classes, { text: out.text });
    expect([meta.width, meta.height]).toEqual([L.width, L.height]);
    expect([out.width, out.height]).toEqual([L.width, L.height]);
    const img = await readRgb(file);
    // A corner of each cell (away from its centred text) has the ramp colour of count / row total.
    const at = (t: number, p: number): number[] => pixel(img, L.originX + p * L.cellSize + 3, L.originY + t * L.cellSize + 3);
    expect(at(0, 0)).toEqual(heatColor(0.8));
    expect(at(0, 1)).toEqual(heatColor(0.2));
    expect(at(1, 2)).toEqual(heatColor(0.5));
    expect(at(3, 3)).toEqual(heatColor(0.75));
    expect(at(2, 2)).toEqual([255, 255, 255]); // an empty row stays white
    expect(at(0, 3)).toEqual([255, 255, 255]);
    // No temporary files left behind.
    expect(await readdir(dir)).toEqual(['heat.png']);
  });

  it('draws text when fonts are available (dark pixels in the title band)', async () => {
    const file = join(dir, 'heat-text.png');
    const out = await confusionHeatmapPng(confusion, classes, file);
    expect(out.text).toBe(await svgTextRenders());
    const img = await readRgb(file);
    let dark = 0;
    for (let y = 0; y < 28; y++) for (let x = 0; x < img.width; x++) if (pixel(img, x, y)[0]! < 100) dark++;
    if (out.text) expect(dark).toBeGreaterThan(50);
    else expect(dark).toBe(0);
    const none = await confusionHeatmapPng(confusion, classes, join(dir, 'heat-plain.png'), { text: false });
    expect(none.text).toBe(false);
  });

  it('scales cells down for many classes', async () => {
    const k = 120;
    const names = Array.from({ length: k }, (_, i) => `class_${i}`);
    const m = Array.from({ length: k }, (_, t) => Array.from({ length: k }, (_, p) => (t === p ? 9 : (t + p) % 7 === 0 ? 1 : 0)));
    const out = await confusionHeatmapPng(m, names, join(dir, 'heat-many.png'));
    expect(heatmapLayout(names).cellSize).toBe(7);
    expect(out.width).toBeLessThan(1300);
    expect((await sharp(out.file).metadata()).width).toBe(out.width);
  });

  it('rejects a matrix that does not match the names', async () => {
    await expect(confusionHeatmapPng([[1, 2]], ['a', 'b'], join(dir, 'x.png'))).rejects.toThrow(/must be 2x2/);
    await expect(confusionHeatmapPng([[-1]], ['a'], join(dir, 'x.png'))).rejects.toThrow(RenderError);
    await expect(confusionHeatmapPng([], [], join(dir, 'x.png'))).rejects.toThrow(/one name per row/);
  });
});

describe('contactSheetPng', () => {
  function solid(w: number, h: number, rgb: [number, number, number]): Uint8Array {
    const d = new Uint8Array(w * h * 3);
    for (let i = 0; i < d.length; i += 3) d.set(rgb, i);
    return d;
  }

  it('lays out thumbnails in a grid with green and red frames', async () => {
    const images = [
      { data: solid(32, 32, [250, 200, 0]), width: 32, height: 32, caption: 'ok one', ok: true },
      { data: solid(40, 20, [0, 0, 200]), width: 40, height: 20, caption: 'wrong: cross\n(true ring)', ok: false },
      { data: new Uint8Array(16 * 16).fill(90), width: 16, height: 16, caption: 'grey, no verdict' },
      { data: new Uint8Array(8 * 8 * 4).map((_, i) => (i % 4 === 3 ? 255 : 200)), width: 8, height: 8, caption: 'rgba' },
      { data: solid(200, 100, [10, 120, 10]), width: 200, height: 100, caption: 'a long caption that will not fit in the cell', ok: true },
    ];
    const file = join(dir, 'sheet.png');
    const out = await contactSheetPng(images, file, { columns: 3, thumbSize: 64, title: 'sheet' });
    const L = contactSheetLayout(images.length, { columns: 3, thumbSize: 64, title: 'sheet', text: out.text });
    expect([L.rows, L.columns]).toEqual([2, 3]);
    const meta = await sharp(file).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', L.width, L.height]);
    const img = await readRgb(file);
    const corner = (i: number): [number, number] => [
      L.originX + (i % L.columns) * L.cellWidth + L.pad,
      L.originY + Math.floor(i / L.columns) * L.cellHeight + L.pad,
    ];
    const centre = (i: number): number[] => pixel(img, corner(i)[0] + 32, corner(i)[1] + 32);
    expect(centre(0)).toEqual([250, 200, 0]);
    expect(centre(1)).toEqual([0, 0, 200]);
    expect(centre(2)).toEqual([90, 90, 90]);
    expect(centre(3)).toEqual([200, 200, 200]);
    // Frames: 3 px wide, centred 2.5 px outside the thumbnail square.
    const frame = (i: number): number[] => pixel(img, corner(i)[0] + 32, corner(i)[1] - 3);
    expect(frame(0)).toEqual([0x2c, 0xa0, 0x2c]);
    expect(frame(1)).toEqual([0xd6, 0x27, 0x28]);
    // The 40x20 image is letterboxed: white above it inside the square.
    expect(pixel(img, corner(1)[0] + 32, corner(1)[1] + 4)).toEqual([255, 255, 255]);
  });

  it('rejects bad input', async () => {
    await expect(contactSheetPng([], join(dir, 'y.png'))).rejects.toThrow(/at least one image/);
    await expect(contactSheetPng([{ data: new Uint8Array(10), width: 3, height: 3, caption: '' }], join(dir, 'y.png'))).rejects.toThrow(
      /expected 1, 3 or 4 uint8 channels/,
    );
    await expect(contactSheetPng([{ data: new Uint8Array(3), width: 1, height: 1, caption: '' }], join(dir, 'y.png'), { columns: 0 })).rejects.toThrow(
      /columns/,
    );
  });

  it('writes atomically: the target is either absent or a whole PNG', async () => {
    const file = join(dir, 'atomic.png');
    await contactSheetPng([{ data: solid(4, 4, [1, 2, 3]), width: 4, height: 4, caption: 'x' }], file, { thumbSize: 16 });
    const bytes = await readFile(file);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
