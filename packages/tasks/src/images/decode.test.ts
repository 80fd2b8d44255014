import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage, sniffImageFormat } from './decode.js';
import { ImageDecodeError } from './errors.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-decode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic pixels: a pseudo-random pattern with `channels` channels. */
function pattern(width: number, height: number, channels: number, seed = 1): Buffer {
  const out = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** A smooth RGB gradient (JPEG-friendly). */
function gradient(width: number, height: number): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      out[o] = Math.round((x / (width - 1)) * 255);
      out[o + 1] = Math.round((y / (height - 1)) * 255);
      out[o + 2] = 128;
    }
  }
  return out;
}

const raw = (data: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4) => sharp(data, { raw: { width, height, channels } });

async function expectDecodeError(p: Promise<unknown>): Promise<ImageDecodeError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ImageDecodeError);
  return e as ImageDecodeError;
}

describe('decodeImage', () => {
  it('round-trips PNG exactly, from bytes and from a path', async () => {
    const pixels = pattern(13, 7, 3);
    const png = await raw(pixels, 13, 7, 3).png().toBuffer();
    const fromBytes = await decodeImage(png, 'mem.png');
    expect(fromBytes).toMatchObject({ width: 13, height: 7, name: 'mem.png' });
    expect(Buffer.from(fromBytes.data)).toEqual(pixels);
    const file = join(dir, 'rt.png');
    writeFileSync(file, png);
    const fromPath = await decodeImage(file);
    expect(fromPath.name).toBe(file);
    expect(Buffer.from(fromPath.data)).toEqual(pixels);
  });

  it('round-trips lossless WebP exactly', async () => {
    const pixels = pattern(9, 11, 3, 7);
    const webp = await raw(pixels, 9, 11, 3).webp({ lossless: true }).toBuffer();
    expect(sniffImageFormat(webp)).toBe('webp');
    const img = await decodeImage(webp);
    expect(img).toMatchObject({ width: 9, height: 11, name: '<bytes>' });
    expect(Buffer.from(img.data)).toEqual(pixels);
  });

  it('decodes JPEG as the decoder does, close to the encoded pixels', async () => {
    const pixels = gradient(64, 48);
    const jpeg = await raw(pixels, 64, 48, 3).jpeg({ quality: 95 }).toBuffer();
    expect(sniffImageFormat(jpeg)).toBe('jpeg');
    const img = await decodeImage(jpeg);
    expect(img).toMatchObject({ width: 64, height: 48 });
    let sum = 0;
    for (let i = 0; i < pixels.length; i++) sum += Math.abs(img.data[i]! - pixels[i]!);
    expect(sum / pixels.length).toBeLessThan(3);
  });

  it('turns grayscale into RGB by replicating the channel', async () => {
    const gray = pattern(10, 6, 1, 3);
    const png = await raw(gray, 10, 6, 1).toColourspace('b-w').png().toBuffer();
    expect((await sharp(png).metadata()).channels).toBe(1);
    const img = await decodeImage(png);
    expect(img.data.length).toBe(10 * 6 * 3);
    for (let i = 0; i < gray.length; i++) expect([img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2]]).toEqual([gray[i], gray[i], gray[i]]);
    const grayJpeg = await raw(gray, 10, 6, 1).toColourspace('b-w').jpeg().toBuffer();
    expect((await sharp(grayJpeg).metadata()).channels).toBe(1);
    const j = await decodeImage(grayJpeg);
    for (let i = 0; i < 60; i++) expect(j.data[3 * i]).toBe(j.data[3 * i + 2]);
  });

  it('drops alpha like PIL convert("RGB") (no compositing), for RGBA and gray + alpha', async () => {
    const rgba = pattern(5, 4, 4, 11);
    rgba[3] = 0; // a fully transparent pixel keeps its colour
    const img = await decodeImage(await raw(rgba, 5, 4, 4).png().toBuffer());
    for (let i = 0; i < 20; i++) expect([...img.data.subarray(3 * i, 3 * i + 3)]).toEqual([...rgba.subarray(4 * i, 4 * i + 3)]);
    const la = pattern(5, 4, 2, 5);
    const laPng = await raw(la, 5, 4, 2).toColourspace('b-w').png().toBuffer();
    expect((await sharp(laPng).metadata()).channels).toBe(2);
    const g = await decodeImage(laPng);
    for (let i = 0; i < 20; i++) expect([...g.data.subarray(3 * i, 3 * i + 3)]).toEqual([la[2 * i], la[2 * i], la[2 * i]]);
  });

  it('does not apply the EXIF orientation (PIL and torchvision do not)', async () => {
    const pixels = pattern(8, 4, 3, 2);
    const jpeg = await raw(pixels, 8, 4, 3).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    expect(await decodeImage(jpeg)).toMatchObject({ width: 8, height: 4 });
  });

  it('rejects a truncated JPEG file, naming the file', async () => {
    const jpeg = await raw(gradient(200, 150), 200, 150, 3).jpeg().toBuffer();
    const file = join(dir, 'cut.jpg');
    writeFileSync(file, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    const e = await expectDecodeError(decodeImage(file));
    expect(e.file).toBe(file);
    expect(e.failure).toBe('corrupt');
    expect(e.format).toBe('jpeg');
    expect(e.message).toContain(file);
    expect(e.message).toMatch(/truncated or damaged/);
  });

  it('rejects truncated PNG and WebP files', async () => {
    const pixels = pattern(64, 64, 3, 9);
    for (const buf of [await raw(pixels, 64, 64, 3).png().toBuffer(), await raw(pixels, 64, 64, 3).webp().toBuffer()]) {
      const e = await expectDecodeError(decodeImage(buf.subarray(0, Math.floor(buf.length / 2)), 'half'));
      expect(e.failure).toBe('corrupt');
      expect(e.message).toMatch(/^cannot decode image half: /);
    }
  });

  it('says what is supported for garbage bytes, empty files and other formats', async () => {
    const garbage = await expectDecodeError(decodeImage(new TextEncoder().encode('certainly not a picture'), 'notes.txt'));
    expect(garbage.failure).toBe('unsupported');
    expect(garbage.message).toMatch(/notes\.txt: it is not an image file \(first bytes: 63 65 72/);
    expect(garbage.message).toMatch(/supported formats are JPEG, PNG, WebP/);
    const empty = await expectDecodeError(decodeImage(new Uint8Array(0), 'empty.jpg'));
    expect(empty.message).toMatch(/empty\.jpg: the file is empty/);
    const gif = await expectDecodeError(decodeImage(await raw(pattern(4, 4, 3), 4, 4, 3).gif().toBuffer(), 'anim.gif'));
    expect(gif.message).toMatch(/it is a GIF file, not JPEG, PNG or WebP/);
  });

  it('names a file it cannot read', async () => {
    const missing = join(dir, 'nope.png');
    const e = await expectDecodeError(decodeImage(missing));
    expect(e.failure).toBe('unreadable');
    expect(e.message).toBe(`cannot decode image ${missing}: cannot read it (no such file); check the path and its permissions`);
    expect((await expectDecodeError(decodeImage(dir))).message).toMatch(/it is a directory/);
  });
});
