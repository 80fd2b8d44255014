/**
 * Seeded training augmentation on RGB uint8 HWC images: torchvision's RandomResizedCrop (the same sampling
 * algorithm as `transforms.RandomResizedCrop.get_params`: ten tries at a random area and log-uniform aspect
 * ratio, then a centre crop clamped to the ratio range) followed by a horizontal flip. The crop is resized
 * with sharp's bilinear kernel; it is not meant to match torchvision's pixels, only its distribution of crops.
 */
import { seededRandom, InvalidSpecError } from '@effnet/core';
import { loadSharp, type RgbImage } from '../images/decode.js';

export type { RgbImage };


/** A crop in pixels: rows top..top+height-1, columns left..left+width-1 (torchvision's i, j, h, w). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface RandomResizedCropOptions {
  /** Range of the crop's area as a fraction of the image's (default [0.08, 1]). */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio, width / height (default [3/4, 4/3]). */
  ratio?: readonly [number, number];
}

export const DEFAULT_CROP_SCALE: readonly [number, number] = [0.08, 1];
export const DEFAULT_CROP_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/** Python's round() on a float: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkRange(name: string, range: readonly [number, number], allowZero: boolean): void {
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && (allowZero ? lo >= 0 : lo > 0) && hi > 0 && lo <= hi)) {
    throw new InvalidSpecError(name, range, `a range [min, max] of ${allowZero ? 'non-negative' : 'positive'} numbers with min <= max`);
  }
}

function checkImage(image: RgbImage): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidSpecError('image size', { width, height }, 'positive integer width and height');
  }
  if (data.length !== width * height * 3) {
    throw new InvalidSpecError(
      'image data length',
      data.length,
      `width * height * 3 = ${width * height * 3} bytes of RGB uint8 HWC for ${width}x${height}; convert grey or RGBA images to RGB first`,
    );
  }
}

/**
 * The crop box of torchvision's RandomResizedCrop.get_params for an image of `height` x `width`, drawing
 * from `random` (uniform in [0, 1)): up to ten tries of area ~ U(scale) * area and ratio ~ exp(U(log ratio)),
 * accepted when the rounded box fits; otherwise the largest centred box whose ratio is within the range.
 */
export function randomResizedCropParams(
  height: number,
  width: number,
  random: () => number,
  options: RandomResizedCropOptions = {},
): CropBox {
  const scale = options.scale ?? DEFAULT_CROP_SCALE;
  const ratio = options.ratio ?? DEFAULT_CROP_RATIO;
  checkRange('scale', scale, true);
  checkRange('ratio', ratio, false);
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * random());
    const aspect = Math.exp(logLo + (logHi - logLo) * random());
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = Math.floor(random() * (height - h + 1));
      const left = Math.floor(random() * (width - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  // Fallback: a centre crop, the whole image when its ratio is in range, else clamped to the nearer bound.
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) {
    h = roundHalfEven(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    w = roundHalfEven(h * Math.max(...ratio));
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** Crops `box` out of `image` and resizes it to `size` x `size` with sharp's bilinear kernel. */
export async function resizedCrop(image: RgbImage, box: CropBox, size: number): Promise<RgbImage> {
  checkImage(image);
  if (!Number.isInteger(size) || size < 1) throw new InvalidSpecError('size', size, 'a positive integer number of pixels');
  const { top, left, width, height } = box;
  if (!(top >= 0 && left >= 0 && width >= 1 && height >= 1 && top + height <= image.height && left + width <= image.width)) {
    throw new InvalidSpecError('crop box', box, `a box inside the ${image.width}x${image.height} image`);
  }
  const sharp = await loadSharp();
  const input = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const { data, info } = await sharp(input, { raw: { width: image.width, height: image.height, channels: 3 } })
    .extract({ left, top, width, height })
    .resize(size, size, { kernel: 'linear', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new InvalidSpecError('image channels', info.channels, '3 (RGB)');
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/** The image mirrored left to right. */
export function flipHorizontal(image: RgbImage): RgbImage {
  checkImage(image);
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3;
      const d = row + (width - 1 - x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { data: out, width, height };
}

export interface TrainAugmentOptions extends RandomResizedCropOptions {
  /** Output side in pixels. */
  size: number;
  /** Seed of this image's draws; derive one per (epoch, index), e.g. with deriveSeed(seed, epoch, index). */
  seed: number;
  /** Probability of a horizontal flip (default 0.5). */
  hflip?: number;
}

export interface AugmentedImage extends RgbImage {
  /** The crop taken from the input, and whether the result was mirrored. */
  box: CropBox;
  flipped: boolean;
}

/** RandomResizedCrop(size, scale, ratio) then RandomHorizontalFlip(hflip), as torchvision's training transform. */
export async function augmentForTraining(image: RgbImage, options: TrainAugmentOptions): Promise<AugmentedImage> {
  const p = options.hflip ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new InvalidSpecError('hflip', p, 'a probability in [0, 1]');
  checkImage(image);
  const random = seededRandom(options.seed);
  const box = randomResizedCropParams(image.height, image.width, random, options);
  const flipped = random() < p;
  const cropped = await resizedCrop(image, box, options.size);
  return { ...(flipped ? flipHorizontal(cropped) : cropped), box, flipped };
}
