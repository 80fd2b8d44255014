import { float32Tensor, forEachConcurrent, InvalidSpecError, normalizeValue, type Tensor } from '@effnet/core';
import type { Interpolation, Preprocessing } from '@effnet/zoo';
import { decodeImage, decodeResized, type ImageSource, type RgbImage, sourceName } from './decode.js';
import { ImageDecodeError } from './errors.js';
import { resizeImage } from './resize.js';

export type { Interpolation, Preprocessing } from '@effnet/zoo';

/** timm's DEFAULT_CROP_PCT, used when an entry gives neither cropPct nor resizeSize. */
export const DEFAULT_CROP_PCT = 0.875;

/** Where the eval transform takes an image: the size it is resized to and the square crop window in that. */
export interface EvalGeometry {
  resizedWidth: number;
  resizedHeight: number;
  /** The crop window in the resized image; negative or overhanging where torchvision pads with zeros. */
  cropLeft: number;
  cropTop: number;
  cropSize: number;
  interpolation: Interpolation;
}

/** Python's round() of a value that is an integer or an integer + 0.5: halves go to the even neighbour. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Checks the fields the transform reads; throws InvalidSpecError naming the field. */
export function checkPreprocessing(p: Preprocessing): void {
  const posInt = (field: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidSpecError(`preprocessing.${field}`, v, 'a positive integer (pixels)');
  };
  if (p === null || typeof p !== 'object') throw new InvalidSpecError('preprocessing', p, 'an object like { inputSize: 224, cropPct: 0.875, interpolation: "bicubic", mean: [...], std: [...] }');
  posInt('inputSize', p.inputSize);
  if (p.resizeSize !== undefined) posInt('resizeSize', p.resizeSize);
  if (p.cropPct !== undefined && !(typeof p.cropPct === 'number' && p.cropPct > 0 && Number.isFinite(p.cropPct))) {
    throw new InvalidSpecError('preprocessing.cropPct', p.cropPct, 'a positive fraction of the resized image kept by the crop, e.g. 0.875');
  }
  if (p.interpolation !== undefined && !['bicubic', 'bilinear', 'nearest'].includes(p.interpolation)) {
    throw new InvalidSpecError('preprocessing.interpolation', p.interpolation, "'bicubic', 'bilinear' or 'nearest'");
  }
  if (p.cropMode !== undefined && p.cropMode !== 'center' && p.cropMode !== 'squash') {
    throw new InvalidSpecError('preprocessing.cropMode', p.cropMode, "'center' or 'squash'");
  }
  for (const k of ['mean', 'std'] as const) {
    const v = p[k];
    const ok = Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (k === 'mean' || x > 0));
    if (!ok) throw new InvalidSpecError(`preprocessing.${k}`, v, `three numbers for R, G, B on the [0, 1] scale${k === 'std' ? ', all positive' : ''}`);
  }
}

/**
 * The geometry of timm's `transforms_imagenet_eval` (and torchvision's preset, via `resizeSize`) for one image:
 *
 * - the short side goes to `resizeSize`, else to floor(inputSize / cropPct) (cropPct defaults to 0.875), and the long
 *   side to int(short * long / shortIn), as torchvision's `Resize(int)`; with `cropMode: 'squash'` both sides go to
 *   that size, as timm's `Resize((s, s))`;
 * - then torchvision's `CenterCrop(inputSize)`: top = round((h - size) / 2) with Python's round (halves to even),
 *   zero padding where the image is smaller than the crop.
 */
export function evalGeometry(width: number, height: number, p: Preprocessing): EvalGeometry {
  checkPreprocessing(p);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidSpecError('image size', { width, height }, 'positive integer width and height');
  }
  const size = p.inputSize;
  // Python: math.floor(img_size / crop_pct), both doubles, so the same float division here.
  const scale = p.resizeSize ?? Math.floor(size / (p.cropPct ?? DEFAULT_CROP_PCT));
  let resizedWidth: number;
  let resizedHeight: number;
  if (p.cropMode === 'squash') {
    resizedWidth = scale;
    resizedHeight = scale;
  } else if (width <= height) {
    resizedWidth = scale;
    resizedHeight = Math.trunc((scale * height) / width);
  } else {
    resizedHeight = scale;
    resizedWidth = Math.trunc((scale * width) / height);
  }
  const offset = (resized: number) => (size > resized ? -Math.floor((size - resized) / 2) : roundHalfEven((resized - size) / 2));
  return {
    resizedWidth,
    resizedHeight,
    cropLeft: offset(resizedWidth),
    cropTop: offset(resizedHeight),
    cropSize: size,
    interpolation: p.interpolation ?? 'bicubic',
  };
}

/**
 * The resized and centre-cropped 8-bit RGB image (HWC, inputSize x inputSize), before scaling and normalisation:
 * torchvision's `CenterCrop(Resize(img))` on a PIL image, pixel for pixel.
 */
export function resizeAndCrop(image: RgbImage, p: Preprocessing): RgbImage {
  const g = evalGeometry(image.width, image.height, p);
  return resizeImage(image, g.resizedWidth, g.resizedHeight, g.interpolation, { left: g.cropLeft, top: g.cropTop, width: g.cropSize, height: g.cropSize });
}

/**
 * The eval transform for one decoded image: resize, centre crop, ToTensor (/255) and Normalize(mean, std), as
 * float32 CHW (3 x inputSize x inputSize), written into `out` from `offset` when given. The arithmetic is
 * torchvision's, in float32.
 */
export function preprocess(image: RgbImage, p: Preprocessing, out: Float32Array = new Float32Array(3 * p.inputSize * p.inputSize), offset = 0): Float32Array {
  const crop = resizeAndCrop(image, p);
  writeNormalized(crop, p, out, offset);
  return out.subarray(offset, offset + 3 * p.inputSize * p.inputSize);
}

/**
 * ToTensor + Normalize: 8-bit RGB (HWC) -> float32 CHW ((v / 255) - mean) / std, written into `out` from `offset`
 * (3 x height x width values). Each step is rounded to float32 as torch computes it.
 */
export function writeNormalized(crop: RgbImage, p: Pick<Preprocessing, 'mean' | 'std'>, out: Float32Array, offset = 0): void {
  if (crop.data.length !== crop.width * crop.height * 3) {
    throw new InvalidSpecError('image data', { length: crop.data.length, width: crop.width, height: crop.height }, `${crop.width * crop.height * 3} bytes of RGB (HWC)`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + 3 * crop.width * crop.height > out.length) {
    throw new InvalidSpecError('offset', offset, `room for ${3 * crop.width * crop.height} values in an output of ${out.length}`);
  }
  const plane = crop.width * crop.height;
  const src = crop.data;
  const luts = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => normalizeValue(v / 255, p.mean[c]!, p.std[c]!)));
  const [r, g, b] = luts as [Float32Array, Float32Array, Float32Array];
  // One pass over the pixels, writing the three planes (three passes read the source three times).
  for (let i = 0, j = 0, o = offset; i < plane; i++, j += 3, o++) {
    out[o] = r[src[j]!]!;
    out[o + plane] = g[src[j + 1]!]!;
    out[o + 2 * plane] = b[src[j + 2]!]!;
  }
}

/**
 * 'exact': Pillow's resampling re-implemented (bit-identical with torchvision's transform); 'fast': decode, resize
 * and crop in libvips (sharp's own threads), within a few levels of it, several times faster on photos.
 */
export type ResizeMode = 'exact' | 'fast';

const KERNELS = { bicubic: 'cubic', bilinear: 'linear', nearest: 'nearest' } as const;

/**
 * The eval transform on the fast path: libvips decodes, resizes and crops; undefined when this image needs the exact
 * path (a crop that pads, or a file the decoder rejects, which the exact path reports by name).
 */
export async function preprocessFast(
  source: string | Uint8Array,
  name: string | undefined,
  p: Preprocessing,
  out: Float32Array = new Float32Array(3 * p.inputSize * p.inputSize),
  offset = 0,
): Promise<Float32Array | undefined> {
  const crop = await decodeResized(source, name, (width, height) => {
    const g = evalGeometry(width, height, p);
    if (g.cropLeft < 0 || g.cropTop < 0 || g.cropLeft + g.cropSize > g.resizedWidth || g.cropTop + g.cropSize > g.resizedHeight) return undefined;
    return { width: g.resizedWidth, height: g.resizedHeight, crop: { left: g.cropLeft, top: g.cropTop, width: g.cropSize, height: g.cropSize }, kernel: KERNELS[g.interpolation] };
  });
  if (!crop) return undefined;
  writeNormalized(crop, p, out, offset);
  return out.subarray(offset, offset + 3 * p.inputSize * p.inputSize);
}

export interface PreprocessBatchOptions {
  /** Report undecodable images in `errors` and go on with the rest (default false: the first one throws). */
  skipErrors?: boolean;
  /** 'exact' (default: torchvision's tensor bit for bit) or 'fast' (libvips); see ResizeMode. */
  resize?: ResizeMode;
  /** Images decoded at once (default 4). */
  concurrency?: number;
  /**
   * Where to write the batch: at least sources.length x 3 x inputSize^2 values, which the returned tensor then views.
   * A caller that runs batch after batch can alternate two such buffers instead of touching fresh memory each time.
   */
  out?: Float32Array;
}

export interface BatchError {
  /** Position in the input list. */
  index: number;
  name: string;
  error: ImageDecodeError;
}

export interface PreprocessedBatch {
  /** float32 [N, 3, inputSize, inputSize], one row per image that decoded, in input order. */
  tensor: Tensor;
  /** The names of the images in `tensor`, row by row. */
  names: string[];
  /** The position in the input list of each row of `tensor`. */
  indices: number[];
  /** Images that could not be decoded (only with skipErrors). */
  errors: BatchError[];
}

/**
 * Decodes and preprocesses a list of images (paths, bytes, or `{ source, name }`) into one NCHW batch.
 * Bytes without a name are reported as `<input i>`.
 *
 * @throws ImageDecodeError for the first image (in input order) that cannot be decoded, unless `skipErrors`
 * @throws InvalidSpecError for preprocessing fields that cannot work, before anything is read
 */
export async function preprocessBatch(sources: readonly ImageSource[], p: Preprocessing, options: PreprocessBatchOptions = {}): Promise<PreprocessedBatch> {
  checkPreprocessing(p);
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidSpecError('concurrency', concurrency, 'a positive integer');
  const n = sources.length;
  const per = 3 * p.inputSize * p.inputSize;
  if (options.out && options.out.length < n * per) throw new InvalidSpecError('out', `${options.out.length} values`, `room for ${n} images of ${per} values`);
  // Each image is written straight into its row; rows of images that failed are closed up at the end.
  const data = options.out ?? new Float32Array(n * per);
  const results: (Float32Array | ImageDecodeError | undefined)[] = new Array(n);
  let failed = false;
  await forEachConcurrent(
    n,
    concurrency,
    async (i) => {
      const src = sources[i]!;
      const name = sourceName(src, `<input ${i}>`);
      try {
        const bytes = typeof src === 'string' || src instanceof Uint8Array ? src : src.source;
        results[i] = (options.resize === 'fast' ? await preprocessFast(bytes, name, p, data, i * per) : undefined) ?? preprocess(await decodeImage(bytes, name), p, data, i * per);
      } catch (e) {
        if (!(e instanceof ImageDecodeError)) throw e;
        results[i] = e;
        failed = true;
      }
    },
    () => failed && !options.skipErrors,
  );

  const errors: BatchError[] = [];
  const names: string[] = [];
  const indices: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = results[i];
    if (r instanceof ImageDecodeError) {
      // Everything before the first failure was started, so this is the first bad image in input order.
      if (!options.skipErrors) throw r;
      errors.push({ index: i, name: r.file, error: r });
    } else if (r) {
      // Row indices.length <= i: moving rows down in order never overwrites one still to be moved.
      if (indices.length !== i) data.copyWithin(indices.length * per, i * per, (i + 1) * per);
      names.push(sourceName(sources[i]!, `<input ${i}>`));
      indices.push(i);
    }
  }
  return { tensor: float32Tensor([indices.length, 3, p.inputSize, p.inputSize], data.subarray(0, indices.length * per)), names, indices, errors };
}
