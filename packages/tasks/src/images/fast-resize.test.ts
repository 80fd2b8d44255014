import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Preprocessing } from '@effnet/zoo';
import { ImageDecodeError } from './errors.js';
import { preprocessBatch } from './preprocess.js';

/** A smooth photo-like test card: gradients and a few soft discs, as JPEG. */
async function card(width: number, height: number, seed: number): Promise<Buffer> {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const d = Math.hypot(x - width * (0.3 + 0.1 * seed), y - height / 2) / Math.min(width, height);
      data[i] = (255 * x) / width;
      data[i + 1] = (255 * y) / height;
      data[i + 2] = Math.max(0, 255 - 400 * d);
    }
  return sharp(Buffer.from(data), { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

const p: Preprocessing = { inputSize: 96, cropPct: 0.875, interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

describe('the fast resize path', () => {
  it("stays within a few levels of the exact (Pillow) path on photo-like images, for each interpolation", async () => {
    const images = await Promise.all([card(640, 480, 0), card(333, 517, 1), card(1024, 200, 2)]);
    for (const interpolation of ['bicubic', 'bilinear'] as const) {
      const q = { ...p, interpolation };
      const [exact, fast] = [await preprocessBatch(images, q), await preprocessBatch(images, q, { resize: 'fast' })];
      expect(fast.tensor.shape).toEqual(exact.tensor.shape);
      const a = exact.tensor.data as Float32Array;
      const b = fast.tensor.data as Float32Array;
      let sum = 0;
      for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!) * 0.226 * 255;
      expect(sum / a.length).toBeLessThan(2);
    }
  });

  it('takes the exact path where the crop pads, and reports an unreadable file by name as the exact path does', async () => {
    const small = await card(40, 30, 0);
    const q = { ...p, resizeSize: 80 }; // the short side resized below the crop: torchvision pads
    expect((await preprocessBatch([small], q, { resize: 'fast' })).tensor.data).toEqual((await preprocessBatch([small], q)).tensor.data);
    const cut = (await card(200, 100, 0)).subarray(0, 300);
    const r = await preprocessBatch([{ source: cut, name: 'cut.jpg' }, small], p, { resize: 'fast', skipErrors: true });
    expect(r.errors.map((e) => e.name)).toEqual(['cut.jpg']);
    expect(r.errors[0]!.error).toBeInstanceOf(ImageDecodeError);
    expect(r.names).toHaveLength(1);
  });
});
