import { InvalidSpecError } from '@effnet/core';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { scanImageFolder } from './image-folder.js';
import { SHAPE_CLASSES, generateShape, generateShapeDataset, renderShape, shapeParams, type ShapeClass, type ShapeParams } from './shapes.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('generateShape', () => {
  it('has at least six named, sorted, distinct classes', () => {
    expect(SHAPE_CLASSES.length).toBeGreaterThanOrEqual(6);
    expect(new Set(SHAPE_CLASSES).size).toBe(SHAPE_CLASSES.length);
    expect([...SHAPE_CLASSES]).toEqual([...SHAPE_CLASSES].sort());
    expect(SHAPE_CLASSES).toEqual(expect.arrayContaining(['circle', 'square', 'triangle', 'star', 'cross', 'ring']));
  });

  it('is a pure function of (seed, index) and cycles through the classes', () => {
    const a = generateShape(3, 10);
    const b = generateShape(3, 10);
    expect(a.width).toBe(64);
    expect(a.height).toBe(64);
    expect(a.data.length).toBe(64 * 64 * 3);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(a.label).toBe(10 % SHAPE_CLASSES.length);
    expect(a.className).toBe(SHAPE_CLASSES[a.label]);
    expect(Buffer.from(generateShape(4, 10).data).equals(Buffer.from(a.data))).toBe(false);
    expect(Buffer.from(generateShape(3, 11).data).equals(Buffer.from(a.data))).toBe(false);
  });

  it('honours size', () => {
    const img = generateShape(0, 0, { size: 32 });
    expect([img.width, img.height, img.data.length]).toEqual([32, 32, 32 * 32 * 3]);
  });

  it('draws parameters in range: extent 30-80%, inside the image, contrasting colour', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.nat(100_000), fc.integer({ min: 16, max: 256 }), (seed, index, size) => {
        const p = shapeParams(seed, index, { size });
        expect(2 * p.radius).toBeGreaterThanOrEqual(0.3 * size - 1e-9);
        expect(2 * p.radius).toBeLessThanOrEqual(0.8 * size + 1e-9);
        expect(p.cx - p.radius).toBeGreaterThanOrEqual(-1e-9);
        expect(p.cy - p.radius).toBeGreaterThanOrEqual(-1e-9);
        expect(p.cx + p.radius).toBeLessThanOrEqual(size + 1e-9);
        expect(p.cy + p.radius).toBeLessThanOrEqual(size + 1e-9);
        const bg = [0, 1, 2].map((c) => (p.bg0[c]! + p.bg1[c]!) / 2);
        expect(Math.hypot(p.color[0] - bg[0]!, p.color[1] - bg[1]!, p.color[2] - bg[2]!)).toBeGreaterThan(140);
        expect(p.className).toBe(SHAPE_CLASSES[index % SHAPE_CLASSES.length]);
      }),
      { numRuns: 300 },
    );
  });

  it('uses every fill texture', () => {
    const fills = new Set(Array.from({ length: 60 }, (_, i) => shapeParams(1, i).fill));
    expect(fills).toEqual(new Set(['solid', 'stripes', 'dots']));
  });

  it('paints a solid shape in its colour at its centre', () => {
    let checked = 0;
    for (let i = 0; i < 120 && checked < 8; i++) {
      const p = shapeParams(5, i);
      if (p.fill !== 'solid' || (p.className !== 'circle' && p.className !== 'square')) continue;
      const img = generateShape(5, i);
      const o = (Math.floor(p.cy) * 64 + Math.floor(p.cx)) * 3;
      for (let c = 0; c < 3; c++) expect(Math.abs(img.data[o + c]! - p.color[c]!)).toBeLessThanOrEqual(40);
      checked++;
    }
    expect(checked).toBeGreaterThan(3);
  });

  /** White shape on black, no noise: the summed coverage is the shape's area in pixels. */
  function coveredArea(className: ShapeClass, detail: number, radius: number): number {
    const size = 128;
    const p: ShapeParams = {
      ...shapeParams(0, 0, { size }),
      className, detail, radius, cx: 64.3, cy: 63.8, rotation: 0.7, fill: 'solid', color: [255, 255, 255], color2: [255, 255, 255],
      bg0: [0, 0, 0], bg1: [0, 0, 0], bgNoise: 0, pixelNoise: 0,
    };
    const data = renderShape(p, 1, { supersample: 8 });
    let sum = 0;
    let partial = 0;
    for (let i = 0; i < data.length; i += 3) {
      sum += data[i]! / 255;
      if (data[i]! > 0 && data[i]! < 255) partial++;
    }
    expect(partial).toBeGreaterThan(0); // antialiased edges
    return sum;
  }

  it('draws each class with its exact area (antialiased coverage)', () => {
    const r = 40;
    const s36 = Math.sin(Math.PI / 5);
    const expected: Record<ShapeClass, [number, number]> = {
      circle: [0, Math.PI * r * r],
      ring: [0.5, Math.PI * r * r * (1 - 0.25)],
      square: [0, 2 * r * r],
      triangle: [0, ((3 * Math.sqrt(3)) / 4) * r * r],
      star: [0.4, 5 * 0.4 * s36 * r * r],
      cross: [0.25, (8 * 0.25 * Math.sqrt(1 - 0.0625) - 4 * 0.0625) * r * r],
    };
    for (const cls of SHAPE_CLASSES) {
      const [detail, area] = expected[cls];
      expect(coveredArea(cls, detail, r) / area, cls).toBeCloseTo(1, 2);
    }
  });

  it('rejects bad options with what would fix them', () => {
    expect(() => generateShape(0, -1)).toThrow(InvalidSpecError);
    expect(() => generateShape(0, 1.5)).toThrow(/non-negative integer/);
    expect(() => generateShape(0, 0, { size: 3 })).toThrow(/8 to 4096/);
    expect(() => generateShape(0, 0, { supersample: 0 })).toThrow(/supersample/);
  });
});

describe('generateShapeDataset', () => {
  it('writes an ImageFolder tree of lossless PNGs that scanImageFolder reads back with the same labels', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'effnet-shapes-'));
    dirs.push(dir);
    const ds = await generateShapeDataset(dir, { perClass: 3, size: 32, seed: 9 });
    expect(ds.files.length).toBe(3 * SHAPE_CLASSES.length);
    expect((await readdir(dir)).sort()).toEqual([...SHAPE_CLASSES]);
    for (const cls of SHAPE_CLASSES) expect((await readdir(join(dir, cls))).sort()).toEqual(['0.png', '1.png', '2.png']);

    const folder = await scanImageFolder(dir);
    expect(folder.classes).toEqual([...SHAPE_CLASSES]);
    expect(folder.samples.map((s) => s.label)).toEqual(ds.files.map((f) => f.label));

    // File n of class c is image n * classes + c of the stream, pixel for pixel.
    const { data, info } = await sharp(join(dir, 'star', '2.png')).raw().toBuffer({ resolveWithObject: true });
    const star = SHAPE_CLASSES.indexOf('star');
    const expected = generateShape(9, 2 * SHAPE_CLASSES.length + star, { size: 32 });
    expect([info.width, info.height, info.channels]).toEqual([32, 32, 3]);
    expect(Buffer.from(data).equals(Buffer.from(expected.data))).toBe(true);
    expect(expected.className).toBe('star');
  });

  it('zero-pads names so they sort in order, and writes JPEG on request', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'effnet-shapes-'));
    dirs.push(dir);
    await generateShapeDataset(dir, { perClass: 11, size: 16, format: 'jpeg' });
    const names = await readdir(join(dir, 'ring'));
    expect(names.sort()).toEqual(Array.from({ length: 11 }, (_, i) => `${String(i).padStart(2, '0')}.jpg`));
    expect((await sharp(join(dir, 'ring', '10.jpg')).metadata()).format).toBe('jpeg');
  });

  it('rejects bad options', async () => {
    await expect(generateShapeDataset('/nonexistent', { perClass: 0 })).rejects.toThrow(/perClass/);
    await expect(generateShapeDataset('/nonexistent', { perClass: 1, format: 'gif' as 'png' })).rejects.toThrow(/format/);
  });
});
