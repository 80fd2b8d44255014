import { InvalidSpecError } from '@effnet/core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCocoDetection } from '../detection/coco-dataset.js';
import { generateScene, generateSceneDataset, SCENE_CLASSES, sceneParams } from './scenes.js';
import { generateShape, renderLayers, renderShape, shapeParams, SHAPE_CLASSES } from './shapes.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('generated scenes', () => {
  it('places objects without overlap, inside the image, with boxes and masks that agree', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e4 }), fc.integer({ min: 32, max: 96 }), (seed, index, size) => {
        const p = sceneParams(seed, index, { size });
        expect(p.objects.length).toBeLessThanOrEqual(4);
        for (const [i, a] of p.objects.entries()) {
          expect(a.cx - a.radius).toBeGreaterThanOrEqual(0);
          expect(a.cy + a.radius).toBeLessThanOrEqual(size);
          for (const b of p.objects.slice(i + 1)) expect(Math.hypot(a.cx - b.cx, a.cy - b.cy)).toBeGreaterThanOrEqual(a.radius + b.radius);
        }
        const scene = generateScene(seed, index, { size, supersample: 2 });
        expect(scene.objects.map((o) => o.label)).toEqual(p.objects.map((o) => o.label));
        // Every mask pixel of class c lies in the box of an object of class c, and each object's mask pixels
        // (pixels it covers at least half of) number about its covered area.
        const counts = new Map<number, number>();
        for (let y = 0; y < size; y++) {
          for (let x = 0; x < size; x++) {
            const m = scene.mask[y * size + x]!;
            if (m === 0) continue;
            const owner = scene.objects.findIndex((o) => o.label + 1 === m && x + 0.5 >= o.box[0] && x + 0.5 <= o.box[2] && y + 0.5 >= o.box[1] && y + 0.5 <= o.box[3]);
            expect(owner).toBeGreaterThanOrEqual(0);
            counts.set(owner, (counts.get(owner) ?? 0) + 1);
          }
        }
        for (const [k, o] of scene.objects.entries()) {
          expect(o.box[0]).toBeGreaterThanOrEqual(0);
          expect(o.box[3]).toBeLessThanOrEqual(size);
          expect(o.box[2] - o.box[0]).toBeLessThanOrEqual(2 * p.objects[k]!.radius + 1);
          expect(Math.abs((counts.get(k) ?? 0) - o.area)).toBeLessThanOrEqual(0.2 * o.area + 2 * (o.box[2] - o.box[0] + o.box[3] - o.box[1]));
        }
      }),
      { numRuns: 25 },
    );
  });

  it('is a pure function of (seed, index) and uses every class', () => {
    const a = generateScene(5, 7, { size: 48, supersample: 1 });
    const b = generateScene(5, 7, { size: 48, supersample: 1 });
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(a.objects).toEqual(b.objects);
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) for (const o of sceneParams(1, i, { size: 64 }).objects) seen.add(o.label);
    expect(seen.size).toBe(SHAPE_CLASSES.length);
    expect(SCENE_CLASSES[0]).toBe('background');
  });

  it('renders one shape exactly as renderShape does (the layered renderer is the single-shape one)', () => {
    const p = shapeParams(3, 4, { size: 40 });
    const layered = renderLayers(p, [p], 99, 2);
    expect(Buffer.from(layered.data).equals(Buffer.from(renderShape(p, 99, { supersample: 2 })))).toBe(true);
    expect(generateShape(3, 4, { size: 40 }).data.length).toBe(40 * 40 * 3);
    // A solid square's box: its side is sqrt(2) x radius, axis-aligned when not rotated.
    const square = { ...shapeParams(0, 3, { size: 64 }), rotation: 0, cx: 32, cy: 32, radius: 20 };
    const [box] = renderLayers(square, [square], 1, 4).extents.map((e) => e.box);
    const half = 20 * Math.SQRT1_2;
    expect(box![0]).toBeCloseTo(32 - half, 0);
    expect(box![2]).toBeCloseTo(32 + half, 0);
  });

  it('rejects bad options with what would fix them', () => {
    expect(() => sceneParams(0, 0, { objects: [3, 2] })).toThrow(InvalidSpecError);
    expect(() => sceneParams(0, 0, { extent: [0, 2] })).toThrow(/fractions of the image side/);
    expect(() => sceneParams(0, -1)).toThrow(/non-negative/);
  });

  it('writes a COCO dataset with index masks that the detection loader reads back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'effnet-scenes-'));
    dirs.push(dir);
    const written = await generateSceneDataset(dir, { count: 6, size: 48, seed: 2 });
    const data = await loadCocoDetection(dir);
    expect(data.categories.map((c) => c.name)).toEqual([...SHAPE_CLASSES]);
    expect(data.samples).toHaveLength(6);
    expect(data.samples.reduce((n, s) => n + s.boxes.length, 0)).toBe(written.objects);
    const scene = generateScene(2, 4, { size: 48 });
    expect(data.samples[4]!.classes).toEqual(scene.objects.map((o) => o.label));
    for (const [i, box] of data.samples[4]!.boxes.entries()) {
      for (let c = 0; c < 4; c++) expect(box[c]).toBeCloseTo(scene.objects[i]!.box[c]!, 2);
    }
    expect((await sharp(join(dir, 'masks', '4.png')).metadata()).channels).toBe(1);
    const mask = await sharp(join(dir, 'masks', '4.png')).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect(Buffer.from(scene.mask).equals(mask.data)).toBe(true);
    expect((await readFile(join(dir, 'classes.txt'), 'utf8')).trim().split('\n')).toEqual([...SCENE_CLASSES]);
  });
});
