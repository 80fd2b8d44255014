/**
 * Image transforms that carry boxes along, as effdet's data/transforms.py: horizontal flip (`RandomFlip`), training
 * scale jitter with a random crop (`RandomResizePad`, scale (0.1, 2.0), bilinear or bicubic at random) and the eval
 * letterbox (`ResizePad`). The resized image is pasted at the top-left corner of a target-size canvas filled with
 * `fill`; boxes are scaled, shifted by the crop, clipped to the pasted content and dropped when empty (x1 >= x2 or
 * y1 >= y2). Resizing is Pillow's (resizeImage), as effdet runs PIL. Random draws come in effdet's order from a seeded
 * source, so a (seed, image) pair always gives the same result; they are not Python's random numbers.
 */
import { InvalidSpecError, seededRandom } from '@effnet/core';
import type { Interpolation } from '@effnet/zoo';
import { flipHorizontal } from '../data/augment.js';
import type { RgbImage } from '../images/decode.js';
import { resizeImage } from '../images/resize.js';
import type { Box } from './coco-dataset.js';
import type { ImageInfo } from './postprocess.js';

/** An image with its boxes (xyxy pixels) and their classes. */
export interface BoxedImage {
  image: RgbImage;
  boxes: Box[];
  classes: number[];
}

/** effdet's `resolve_fill_color('mean')`: the normalisation mean as 0-255 colour; for ImageNet's mean (124, 116, 104). */
export function fillColorForMean(mean: readonly [number, number, number]): [number, number, number] {
  return mean.map((m) => Math.round(255 * m)) as [number, number, number];
}

/** effdet's default letterbox fill: the ImageNet mean colour. */
export const EFFDET_FILL_COLOR: readonly [number, number, number] = fillColorForMean([0.485, 0.456, 0.406]);

/** Where a transform put the original image: model pixel = original pixel * scale - offset (clipped to the content). */
export interface ResizeInfo {
  /** Resize factor, model / original. */
  scale: number;
  /** Crop offset into the resized image (0 for the letterbox). */
  offsetX: number;
  offsetY: number;
  /** Size of the resized image before the crop. */
  scaledWidth: number;
  scaledHeight: number;
  originalWidth: number;
  originalHeight: number;
  targetWidth: number;
  targetHeight: number;
}

export interface ResizePadOptions {
  /** Model input size: a side, or [height, width]. */
  size: number | readonly [number, number];
  /** Default 'bicubic' (effdet's resolve_input_config). */
  interpolation?: Interpolation;
  /** Canvas colour (default EFFDET_FILL_COLOR). */
  fill?: readonly [number, number, number];
}

export interface RandomResizePadOptions extends Omit<ResizePadOptions, 'interpolation'> {
  /** Range of the scale factor relative to the target size (default [0.1, 2.0], effdet's). */
  scale?: readonly [number, number];
  /** 'random' (default): bilinear or bicubic, equally likely. */
  interpolation?: Interpolation | 'random';
  /** Uniform draws in [0, 1). */
  random: () => number;
}

function targetSize(size: number | readonly [number, number]): [number, number] {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h >= 1 && w >= 1)) throw new InvalidSpecError('size', size, 'a positive integer side or [height, width]');
  return [h, w];
}

function checkSample(s: BoxedImage): void {
  if (s.boxes.length !== s.classes.length) throw new InvalidSpecError('boxes', s.boxes.length, `one class per box (${s.classes.length} classes)`);
}

/** Boxes mirrored left to right in an image `width` wide. */
export function flipBoxesHorizontal(boxes: readonly Box[], width: number): Box[] {
  return boxes.map(([x1, y1, x2, y2]) => [width - x2, y1, width - x1, y2]);
}

/** effdet's RandomFlip (horizontal) applied: the image and its boxes mirrored. */
export function flipDetection(sample: BoxedImage): BoxedImage {
  checkSample(sample);
  return { image: flipHorizontal(sample.image), boxes: flipBoxesHorizontal(sample.boxes, sample.image.width), classes: [...sample.classes] };
}

/** Scales, shifts and clips boxes into [0, boundW] x [0, boundH]; drops the empty ones with their classes. */
function placeBoxes(sample: BoxedImage, info: ResizeInfo): { boxes: Box[]; classes: number[] } {
  const boundW = Math.min(info.scaledWidth, info.targetWidth);
  const boundH = Math.min(info.scaledHeight, info.targetHeight);
  const boxes: Box[] = [];
  const classes: number[] = [];
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  sample.boxes.forEach(([x1, y1, x2, y2], i) => {
    const b: Box = [
      clip(x1 * info.scale - info.offsetX, boundW),
      clip(y1 * info.scale - info.offsetY, boundH),
      clip(x2 * info.scale - info.offsetX, boundW),
      clip(y2 * info.scale - info.offsetY, boundH),
    ];
    if (b[0] < b[2] && b[1] < b[3]) {
      boxes.push(b);
      classes.push(sample.classes[i]!);
    }
  });
  return { boxes, classes };
}

/** Resizes to the scaled size, takes the crop window and pastes it top-left on a filled target canvas. */
function render(image: RgbImage, info: ResizeInfo, interpolation: Interpolation, fill: readonly [number, number, number]): RgbImage {
  const { targetWidth: tw, targetHeight: th } = info;
  const out = new Uint8Array(tw * th * 3);
  for (let i = 0; i < tw * th; i++) out.set(fill, i * 3);
  const width = Math.min(info.scaledWidth - info.offsetX, tw);
  const height = Math.min(info.scaledHeight - info.offsetY, th);
  const window = resizeImage(image, info.scaledWidth, info.scaledHeight, interpolation, { left: info.offsetX, top: info.offsetY, width, height });
  for (let y = 0; y < height; y++) out.set(window.data.subarray(y * width * 3, (y + 1) * width * 3), y * tw * 3);
  return { data: out, width: tw, height: th };
}

/** effdet's scale bookkeeping: the smaller of the two axis scales, sizes truncated as Python's int(). */
function resizeInfo(image: RgbImage, th: number, tw: number, scaledTargetH: number, scaledTargetW: number): ResizeInfo {
  const scale = Math.min(scaledTargetH / image.height, scaledTargetW / image.width);
  return {
    scale,
    offsetX: 0,
    offsetY: 0,
    scaledWidth: Math.max(1, Math.trunc(image.width * scale)),
    scaledHeight: Math.max(1, Math.trunc(image.height * scale)),
    originalWidth: image.width,
    originalHeight: image.height,
    targetWidth: tw,
    targetHeight: th,
  };
}

/**
 * effdet's eval transform (`ResizePad`): the largest resize that fits the target, pasted top-left on a `fill` canvas
 * (a letterbox). `info` maps boxes back (boxesToOriginal) and gives postprocessDetections its ImageInfo.
 */
export function resizePad(sample: BoxedImage, options: ResizePadOptions): BoxedImage & { info: ResizeInfo } {
  checkSample(sample);
  const [th, tw] = targetSize(options.size);
  const info = resizeInfo(sample.image, th, tw, th, tw);
  const image = render(sample.image, info, options.interpolation ?? 'bicubic', options.fill ?? EFFDET_FILL_COLOR);
  return { image, ...placeBoxes(sample, info), info };
}

/**
 * effdet's training transform step `RandomResizePad`: a scale factor drawn from `scale` times the target size, the
 * image resized to fit that, a random crop of the target size where it is larger (offsets drawn y then x), pasted
 * top-left on a `fill` canvas; boxes follow and are clipped, empty ones dropped.
 */
export function randomResizePad(sample: BoxedImage, options: RandomResizePadOptions): BoxedImage & { info: ResizeInfo } {
  checkSample(sample);
  const [th, tw] = targetSize(options.size);
  const [lo, hi] = options.scale ?? [0.1, 2.0];
  if (!(lo > 0 && hi >= lo)) throw new InvalidSpecError('scale', options.scale, 'a range [min, max] of positive factors');
  const { random } = options;
  const factor = lo + (hi - lo) * random();
  const info = resizeInfo(sample.image, th, tw, factor * th, factor * tw);
  info.offsetY = Math.trunc(Math.max(0, info.scaledHeight - th) * random());
  info.offsetX = Math.trunc(Math.max(0, info.scaledWidth - tw) * random());
  const interpolation = (options.interpolation ?? 'random') === 'random' ? (random() < 0.5 ? 'bilinear' : 'bicubic') : (options.interpolation as Interpolation);
  const image = render(sample.image, info, interpolation, options.fill ?? EFFDET_FILL_COLOR);
  return { image, ...placeBoxes(sample, info), info };
}

export interface DetectionTrainOptions extends Omit<RandomResizePadOptions, 'random'> {
  /** Seed of this image's draws; derive one per (epoch, index), e.g. with deriveSeed(seed, epoch, index). */
  seed: number;
  /** Probability of a horizontal flip (default 0.5). */
  hflip?: number;
}

/** effdet's `transforms_coco_train`: RandomFlip(horizontal, 0.5) then RandomResizePad, drawn from `seed`. */
export function detectionTrainTransform(sample: BoxedImage, options: DetectionTrainOptions): BoxedImage & { info: ResizeInfo; flipped: boolean } {
  const p = options.hflip ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new InvalidSpecError('hflip', p, 'a probability in [0, 1]');
  const random = seededRandom(options.seed);
  const flipped = random() < p;
  return { ...randomResizePad(flipped ? flipDetection(sample) : sample, { ...options, random }), flipped };
}

/** Model-space boxes (after resizePad / randomResizePad) back in original-image pixels: (b + offset) / scale. */
export function boxesToOriginal(boxes: readonly Box[], info: ResizeInfo): Box[] {
  return boxes.map(([x1, y1, x2, y2]) => [(x1 + info.offsetX) / info.scale, (y1 + info.offsetY) / info.scale, (x2 + info.offsetX) / info.scale, (y2 + info.offsetY) / info.scale]);
}

/** effdet's img_info for postprocessDetections: imgScale = 1 / scale and the original [width, height]. */
export function imageInfoFor(info: ResizeInfo): ImageInfo {
  return { imgScale: 1 / info.scale, imgSize: [info.originalWidth, info.originalHeight] };
}
