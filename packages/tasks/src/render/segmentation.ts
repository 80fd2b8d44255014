/** Segmentation pictures: an image with its index mask laid over it in the classes' colours. */
import { writeFileAtomic } from '@effnet/core';
import { loadSharp, type RgbImage } from '../images/decode.js';
import { classColor, IGNORE_INDEX } from '../segmentation/index-png.js';

/**
 * The image with each pixel of a non-background class (index > 0, not 255) blended with its class colour (VOC's
 * colour map) at `alpha`, and class boundaries drawn in the full colour. RGB uint8 HWC.
 */
export function overlayMask(image: RgbImage, mask: Uint8Array, o: { alpha?: number } = {}): RgbImage {
  const alpha = o.alpha ?? 0.5;
  const { width: w, height: h } = image;
  const out = new Uint8Array(image.data);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const c = mask[i]!;
      if (c === 0 || c === IGNORE_INDEX) continue;
      const edge = (x > 0 && mask[i - 1] !== c) || (x < w - 1 && mask[i + 1] !== c) || (y > 0 && mask[i - w] !== c) || (y < h - 1 && mask[i + w] !== c);
      const a = edge ? 1 : alpha;
      const col = classColor(c);
      for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round(out[i * 3 + k]! * (1 - a) + col[k]! * a);
    }
  return { data: out, width: w, height: h };
}

/** Writes the overlay of `mask` on `image` as a PNG (atomically). */
export async function overlayPng(image: RgbImage, mask: Uint8Array, file: string, o: { alpha?: number } = {}): Promise<void> {
  const over = overlayMask(image, mask, o);
  const png = await (await loadSharp())(Buffer.from(over.data.buffer, over.data.byteOffset, over.data.byteLength), { raw: { width: over.width, height: over.height, channels: 3 } }).png().toBuffer();
  await writeFileAtomic(file, png, { mkdir: true });
}
