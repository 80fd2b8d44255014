import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidSpecError, readNpy } from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../../testing/peers.js';
import { decodeImage } from './decode.js';
import { ImageDecodeError } from './errors.js';
import { evalGeometry, preprocess, preprocessBatch, resizeAndCrop } from './preprocess.js';

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as Pick<Preprocessing, 'mean' | 'std'>;
const B0: Preprocessing = { inputSize: 224, cropPct: 0.875, interpolation: 'bicubic', ...IMAGENET };

/** Deterministic noise, RGB. */
function noise(width: number, height: number, seed = 1): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}
const png = (data: Uint8Array, width: number, height: number) => sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();

describe('evalGeometry', () => {
  it("follows timm's floor(size / crop_pct) and torchvision's Resize(int) and CenterCrop", () => {
    // chelsea.png is 451 x 300: short side 300 -> 256, long side int(256 * 451 / 300) = 384; crop (384-224)/2, (256-224)/2.
    expect(evalGeometry(451, 300, B0)).toEqual({ resizedWidth: 384, resizedHeight: 256, cropLeft: 80, cropTop: 16, cropSize: 224, interpolation: 'bicubic' });
    // tf_efficientnet_b3 style crop_pct = 300 / 332: floor(300 / (300 / 332)) = 332 in double precision.
    expect(evalGeometry(500, 500, { ...B0, inputSize: 300, cropPct: 300 / 332 })).toMatchObject({ resizedWidth: 332, resizedHeight: 332, cropLeft: 16, cropTop: 16 });
    expect(evalGeometry(300, 451, { ...B0, inputSize: 384, cropPct: 1 })).toMatchObject({ resizedWidth: 384, resizedHeight: 577, cropLeft: 0, cropTop: 96 }); // round(96.5) = 96
  });

  it("rounds the crop offset with Python's round (halves to even)", () => {
    // 257 - 224 = 33: round(16.5) = 16; 259 - 224 = 35: round(17.5) = 18.
    expect(evalGeometry(257, 259, { ...B0, resizeSize: 257 })).toMatchObject({ resizedWidth: 257, resizedHeight: 259, cropLeft: 16, cropTop: 18 });
  });

  it('uses resizeSize (torchvision) over cropPct, squash mode, default crop and bicubic', () => {
    expect(evalGeometry(600, 400, { inputSize: 224, resizeSize: 232, ...IMAGENET })).toMatchObject({ resizedWidth: 348, resizedHeight: 232, interpolation: 'bicubic' });
    expect(evalGeometry(600, 400, { ...B0, cropMode: 'squash' })).toMatchObject({ resizedWidth: 256, resizedHeight: 256, cropLeft: 16, cropTop: 16 });
    expect(evalGeometry(600, 400, { inputSize: 224, ...IMAGENET }).resizedHeight).toBe(256);
  });

  it('pads like torchvision where the crop is larger than the resized image', () => {
    // resize short side to 200, crop 224: torchvision pads (224 - 200) // 2 = 12 before.
    expect(evalGeometry(300, 200, { ...B0, resizeSize: 200 })).toMatchObject({ resizedWidth: 300, resizedHeight: 200, cropLeft: 38, cropTop: -12 });
  });

  it('names the preprocessing field that cannot work', () => {
    expect(() => evalGeometry(10, 10, { ...B0, inputSize: 0 })).toThrow(InvalidSpecError);
    expect(() => evalGeometry(10, 10, { ...B0, cropPct: 0 })).toThrow(/preprocessing\.cropPct/);
    expect(() => evalGeometry(10, 10, { ...B0, std: [1, 0, 1] })).toThrow(/preprocessing\.std/);
    expect(() => evalGeometry(10, 10, { ...B0, interpolation: 'lanczos' as never })).toThrow(/preprocessing\.interpolation/);
  });
});

describe('preprocess', () => {
  it('produces 3 x size x size float32 CHW, normalised', () => {
    const img = { data: new Uint8Array(40 * 30 * 3).fill(255), width: 40, height: 30 };
    const out = preprocess(img, { ...B0, inputSize: 16 });
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(3 * 16 * 16);
    for (let c = 0; c < 3; c++) expect(out[c * 256 + 17]).toBeCloseTo((1 - IMAGENET.mean[c]!) / IMAGENET.std[c]!, 5);
  });

  it('fills padding with 0 before normalisation', () => {
    const img = { data: new Uint8Array(20 * 10 * 3).fill(200), width: 20, height: 10 };
    const crop = resizeAndCrop(img, { ...B0, inputSize: 12, resizeSize: 10 });
    expect(crop.data[0]).toBe(0); // row 0 is padding: (12 - 10) // 2 = 1 row above
    expect(crop.data[12 * 3]).toBe(200);
  });
});

describe('preprocessBatch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-batch-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const p: Preprocessing = { ...B0, inputSize: 32 };
  let good: string[];
  let bad: string;

  beforeAll(async () => {
    good = [];
    for (const [i, [w, h]] of [[50, 40], [37, 61], [64, 64]].entries()) {
      const f = join(dir, `ok${i}.png`);
      writeFileSync(f, await png(noise(w!, h!, i + 1), w!, h!));
      good.push(f);
    }
    bad = join(dir, 'cut.jpg');
    const jpeg = await sharp(noise(80, 80), { raw: { width: 80, height: 80, channels: 3 } }).jpeg().toBuffer();
    writeFileSync(bad, jpeg.subarray(0, jpeg.length >> 1));
  });

  it('stacks images into [N, 3, S, S] in input order', async () => {
    const bytes = await png(noise(20, 20, 9), 20, 20);
    const { tensor, names, indices, errors } = await preprocessBatch([good[0]!, { source: good[1]!, name: 'second' }, bytes], p, { concurrency: 2 });
    expect(tensor.shape).toEqual([3, 3, 32, 32]);
    expect(tensor.dtype).toBe('float32');
    expect(names).toEqual([good[0], 'second', '<input 2>']);
    expect(indices).toEqual([0, 1, 2]);
    expect(errors).toEqual([]);
    const one = preprocess(await decodeImage(good[1]!), p);
    expect((tensor.data as Float32Array).subarray(one.length, 2 * one.length)).toEqual(one);
  });

  it('throws for the first bad file without skipErrors', async () => {
    const e = await preprocessBatch([good[0]!, bad, 'missing.png', good[1]!], p).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ImageDecodeError);
    expect((e as ImageDecodeError).file).toBe(bad);
  });

  it('reports bad files and classifies the rest with skipErrors', async () => {
    const { tensor, names, indices, errors } = await preprocessBatch([good[0]!, bad, good[1]!, 'missing.png', good[2]!], p, { skipErrors: true });
    expect(tensor.shape).toEqual([3, 3, 32, 32]);
    expect(names).toEqual([good[0], good[1], good[2]]);
    expect(indices).toEqual([0, 2, 4]);
    expect(errors.map((x) => [x.index, x.name, x.error.failure])).toEqual([
      [1, bad, 'corrupt'],
      [3, 'missing.png', 'unreadable'],
    ]);
    expect(errors[0]!.error.message).toContain(bad);
    const last = preprocess(await decodeImage(good[2]!), p);
    expect((tensor.data as Float32Array).subarray(2 * last.length)).toEqual(last);
  });

  it('writes into a given buffer what it would have allocated, bad files closed up, on both resize paths', async () => {
    const files = [bad, good[0]!, 'missing.png', good[1]!, bad, good[2]!];
    for (const resize of ['exact', 'fast'] as const) {
      const fresh = await preprocessBatch(files, p, { skipErrors: true, resize });
      // A dirty, oversized buffer: whatever it held before must not show through.
      const out = new Float32Array((files.length + 1) * 3 * 32 * 32).fill(Number.NaN);
      const into = await preprocessBatch(files, p, { skipErrors: true, resize, out });
      expect(into.tensor.shape).toEqual([3, 3, 32, 32]);
      expect(into.tensor.data).toEqual(fresh.tensor.data);
      expect((into.tensor.data as Float32Array).buffer).toBe(out.buffer);
      expect([into.names, into.indices]).toEqual([fresh.names, fresh.indices]);
    }
    await expect(preprocessBatch(files, p, { out: new Float32Array(10) })).rejects.toThrow(/out.*room for 6 images/);
  });

  it('returns an empty batch when nothing decodes, and checks preprocessing before reading', async () => {
    const r = await preprocessBatch([bad], p, { skipErrors: true });
    expect(r.tensor.shape).toEqual([0, 3, 32, 32]);
    expect(r.errors).toHaveLength(1);
    await expect(preprocessBatch([good[0]!], { ...p, inputSize: -1 })).rejects.toThrow(InvalidSpecError);
  });
});

/**
 * Parity with torchvision 0.14 + PIL (Debian's python3-torchvision): scripts/torchvision_preprocess.py runs
 * Resize(floor(size / crop_pct), interpolation), CenterCrop(size), ToTensor(), Normalize(mean, std) on the same pixels.
 * The requirement is max |diff| <= 1/255 in [0, 1] units; the resize reproduces Pillow's integer arithmetic, so the
 * measured difference is 0.
 */
describeWithPeers(['torchvision', 'PIL', 'skimage'], 'preprocess matches torchvision', () => {
  const SKIMAGE = '/usr/lib/python3/dist-packages/skimage/data';
  const SCRIPT = 'scripts/torchvision_preprocess.py';
  const dir = mkdtempSync(join(tmpdir(), 'effnet-tv-preprocess-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const images: Record<string, string> = {
    astronaut: join(SKIMAGE, 'astronaut.png'), // 512 x 512 RGB
    chelsea: join(SKIMAGE, 'chelsea.png'), // 451 x 300 RGB
    coffee: join(SKIMAGE, 'coffee.png'), // 600 x 400 RGB
    camera: join(SKIMAGE, 'camera.png'), // 512 x 512 grayscale
    'chelsea.jpg': join(dir, 'chelsea.decoded.png'), // chelsea saved as JPEG by PIL, decoded by us, saved as PNG
    noise: join(dir, 'noise.png'), // 97 x 61 noise: upscaling, with bicubic overshoot to clip
  };
  const half = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } as Pick<Preprocessing, 'mean' | 'std'>;
  const configs: Record<string, Preprocessing> = {
    'bicubic 224/0.875 (timm b0)': B0,
    'bicubic 300/(300/332) (tf b3)': { inputSize: 300, cropPct: 300 / 332, interpolation: 'bicubic', ...half },
    'bilinear 224/0.875': { inputSize: 224, cropPct: 0.875, interpolation: 'bilinear', ...IMAGENET },
    'bilinear 384/1.0': { inputSize: 384, cropPct: 1.0, interpolation: 'bilinear', ...IMAGENET },
    'nearest 224/0.875': { inputSize: 224, cropPct: 0.875, interpolation: 'nearest', ...IMAGENET },
    'bicubic 384 resize 384 (torchvision v2_s)': { inputSize: 384, resizeSize: 384, interpolation: 'bicubic', ...IMAGENET },
    'bicubic 260/0.891 squash': { inputSize: 260, cropPct: 0.891, cropMode: 'squash', interpolation: 'bicubic', ...IMAGENET },
    'bilinear 224 resize 201 (zero padding)': { inputSize: 224, resizeSize: 201, interpolation: 'bilinear', ...IMAGENET },
  };
  const cases = Object.keys(configs).flatMap((config) => Object.keys(images).map((image) => ({ config, image, out: join(dir, `${Object.keys(configs).indexOf(config)}-${image}.npy`) })));

  let jpegDecodeDiff = 0;
  beforeAll(async () => {
    await sharp(noise(97, 61, 5), { raw: { width: 97, height: 61, channels: 3 } }).png().toFile(images.noise!);
    // JPEG path: PIL encodes, we decode; torchvision reads our decoded pixels losslessly (libjpeg versions differ).
    const jpeg = join(dir, 'chelsea.jpg');
    runPython(SCRIPT, ['jpeg', '--image', images.chelsea!, '--out', jpeg, '--quality', '90']);
    const decoded = await decodeImage(jpeg);
    await sharp(decoded.data, { raw: { width: decoded.width, height: decoded.height, channels: 3 } }).png().toFile(images['chelsea.jpg']!);
    runPython(SCRIPT, ['pixels', '--image', jpeg, '--out', join(dir, 'chelsea.jpg.pil.npy')]);
    const pil = (await readNpy(join(dir, 'chelsea.jpg.pil.npy'))).data as Uint8Array;
    for (let i = 0; i < pil.length; i++) jpegDecodeDiff = Math.max(jpegDecodeDiff, Math.abs(pil[i]! - decoded.data[i]!));

    const jobs = cases.map(({ config, image, out }) => {
      const p = configs[config]!;
      return { image: images[image], out, size: p.inputSize, crop_pct: p.cropPct, resize_size: p.resizeSize, crop_mode: p.cropMode, interpolation: p.interpolation, mean: p.mean, std: p.std };
    });
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify(jobs));
    runPython(SCRIPT, ['batch', '--jobs', join(dir, 'jobs.json')]);
  });

  it('decodes PNGs to the same pixels as PIL convert("RGB")', async ({ annotate }) => {
    for (const name of ['astronaut', 'chelsea', 'coffee', 'camera']) {
      const out = join(dir, `${name}.pixels.npy`);
      runPython(SCRIPT, ['pixels', '--image', images[name]!, '--out', out]);
      const pil = await readNpy(out);
      const ours = await decodeImage(images[name]!);
      expect(pil.shape).toEqual([ours.height, ours.width, 3]);
      expect(Buffer.from(ours.data).equals(Buffer.from(pil.data as Uint8Array))).toBe(true);
    }
    // Informational: our JPEG decoder (libvips) against PIL's libjpeg on the same file.
    await annotate(`JPEG decode, sharp vs PIL: max |diff| ${jpegDecodeDiff}/255`);
  });

  it.for(cases)('$config, $image: max |diff| <= 1/255', async ({ config, image, out }, { annotate }) => {
    const p = configs[config]!;
    const ref = (await readNpy(out)).data as Float32Array;
    const ours = preprocess(await decodeImage(images[image]!), p);
    expect(ours.length).toBe(ref.length);
    const plane = p.inputSize * p.inputSize;
    let max = 0;
    let unequal = 0;
    for (let i = 0; i < ours.length; i++) {
      if (ours[i] !== ref[i]) unequal++;
      // Back to [0, 1] units: the normalised difference times std.
      max = Math.max(max, Math.abs(ours[i]! - ref[i]!) * p.std[Math.floor(i / plane)]!);
    }
    await annotate(`max |diff| ${(max * 255).toFixed(4)}/255, ${unequal} of ${ours.length} values not bit-equal`);
    expect(max).toBeLessThanOrEqual(1 / 255);
  });
});
