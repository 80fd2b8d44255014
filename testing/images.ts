/** Images for tests: seeded noise pixels, and the same written as a PNG file that every decoder reads alike. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import sharp from 'sharp';

/** width x height 8-bit RGB (HWC) noise from a seeded linear congruential generator. */
export function noiseImage(width: number, height: number, seed: number): { data: Uint8Array; width: number; height: number } {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width, height };
}

/** noiseImage written as a PNG at `file` (its directory created); returns the path. */
export async function noisePng(file: string, width: number, height: number, seed: number): Promise<string> {
  mkdirSync(dirname(file), { recursive: true });
  await sharp(Buffer.from(noiseImage(width, height, seed).data), { raw: { width, height, channels: 3 } }).png().toFile(file);
  return file;
}
