import { readFile } from 'node:fs/promises';
import type Sharp from 'sharp';
import { ImageDecodeError, type ImageFormat } from './errors.js';

let sharpModule: Promise<typeof Sharp> | undefined;
/**
 * libvips, loaded on first use: loading it costs about 0.15 s, which importing this package should not charge to
 * code that never decodes an image (and which a caller can overlap with other start-up work by calling this early).
 */
export function loadSharp(): Promise<typeof Sharp> {
  return (sharpModule ??= import('sharp').then((m) => m.default));
}

/** 8-bit RGB pixels, row-major, interleaved (HWC): `data[(y * width + x) * 3 + c]`. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A decoded image and the name errors and results refer to it by. */
export interface DecodedImage extends RgbImage {
  name: string;
}

/** An image to read: a path, the file's bytes, or either with the name to report it under. */
export type ImageSource = string | Uint8Array | { source: string | Uint8Array; name: string };

/** The format a file's first bytes announce, if it is one we decode. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  const at = (offset: number, sig: readonly number[]) => sig.every((b, i) => bytes[offset + i] === b);
  if (at(0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return 'webp'; // RIFF....WEBP
  return undefined;
}

/** The name an image source is reported under: its own name, its path, or `fallback` for bare bytes. */
export function sourceName(source: ImageSource, fallback = '<bytes>'): string {
  if (typeof source === 'string') return source;
  if (source instanceof Uint8Array) return fallback;
  return source.name;
}

/**
 * Decodes a JPEG, PNG or WebP file (a path or its bytes) to 8-bit RGB, as torchvision sees it through PIL's
 * `Image.open(f).convert('RGB')`: grayscale is replicated to three channels, alpha is dropped (not composited),
 * the EXIF orientation is not applied and an embedded ICC profile is ignored (PIL applies neither). The first frame
 * of an animated file is used. Truncated or damaged files fail, as they do in PIL. 16-bit RGB PNGs keep the high
 * byte, as PIL does. Two known differences from PIL: 16-bit grayscale PNGs are scaled to 8 bits (PIL clips them to
 * 255, turning most of the image white), and CMYK JPEGs are converted with a colour profile (PIL's is naive).
 *
 * @param name how errors and results refer to the image (default: the path, or `<bytes>`)
 * @throws ImageDecodeError naming the file: unreadable, not JPEG/PNG/WebP, corrupt or truncated, or too large
 */
export async function decodeImage(source: string | Uint8Array, name?: string): Promise<DecodedImage> {
  const file = name ?? (typeof source === 'string' ? source : '<bytes>');
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = await readFile(source);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
      throw new ImageDecodeError(file, 'unreadable', `cannot read it (${why})`);
    }
  } else if (source instanceof Uint8Array) {
    bytes = source;
  } else {
    throw new ImageDecodeError(file, 'unreadable', `expected a path or the file's bytes (Uint8Array), got ${describe(source)}`);
  }

  const format = sniffImageFormat(bytes);
  if (!format) {
    const other = bytes.length === 0 ? 'the file is empty' : await otherFormat(bytes);
    throw new ImageDecodeError(file, 'unsupported', other);
  }

  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    // failOn 'truncated' rejects cut-off files, as PIL does by default, but tolerates decoder warnings as PIL does.
    const { data, info } = await (await loadSharp())(input, { failOn: 'truncated', ignoreIcc: true, autoOrient: false })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { data: toRgb(data, info.width, info.height, info.channels), width: info.width, height: info.height, name: file };
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    const message = ((e as Error).message ?? String(e)).split('\n')[0]!.trim();
    const tooLarge = /pixel limit/i.test(message);
    throw new ImageDecodeError(file, tooLarge ? 'too-large' : 'corrupt', `a ${format.toUpperCase()} file the decoder rejects (${message})`, format);
  }
}

/** Where a resize-and-crop goes for an image of a given size: the resized size and the crop window in it. */
export interface ResizeCrop {
  width: number;
  height: number;
  crop: { left: number; top: number; width: number; height: number };
  kernel: 'cubic' | 'linear' | 'nearest';
}

/**
 * Decodes, resizes and crops in one pass of the image library (libvips through sharp, on its own threads): the fast
 * path, close to but not bit-identical with Pillow's resampling (decodeImage + resizeImage is the exact one).
 * `geometry` gets the decoded size and says where to go; it returns undefined when the crop leaves the resized
 * image (padding), which the caller does on the exact path.
 */
export async function decodeResized(source: string | Uint8Array, name: string | undefined, geometry: (width: number, height: number) => ResizeCrop | undefined): Promise<DecodedImage | undefined> {
  const file = name ?? (typeof source === 'string' ? source : '<bytes>');
  let bytes: Uint8Array;
  try {
    bytes = typeof source === 'string' ? await readFile(source) : source;
  } catch {
    return undefined; // the exact path reports the error
  }
  if (!sniffImageFormat(bytes)) return undefined;
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const meta = await (await loadSharp())(input, { failOn: 'truncated', ignoreIcc: true, autoOrient: false }).metadata();
    if (!meta.width || !meta.height) return undefined;
    const g = geometry(meta.width, meta.height);
    if (!g) return undefined;
    const { data, info } = await (await loadSharp())(input, { failOn: 'truncated', ignoreIcc: true, autoOrient: false })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(g.width, g.height, { fit: 'fill', kernel: g.kernel, fastShrinkOnLoad: false })
      .extract(g.crop)
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { data: toRgb(data, info.width, info.height, info.channels), width: info.width, height: info.height, name: file };
  } catch {
    return undefined; // corrupt or truncated: the exact path decodes it again and reports it by name
  }
}

/** Interleaved 8-bit pixels with 1-4 channels -> RGB (gray replicated, alpha dropped). */
function toRgb(data: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, width * height * 3);
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, n = width * height; i < n; i++) {
    if (channels <= 2) {
      const v = data[i * channels]!;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    } else {
      out[i * 3] = data[i * channels]!;
      out[i * 3 + 1] = data[i * channels + 1]!;
      out[i * 3 + 2] = data[i * channels + 2]!;
    }
  }
  return out;
}

/** Says what the bytes are instead, when the decoder recognises another format. */
async function otherFormat(bytes: Uint8Array): Promise<string> {
  try {
    const { format } = await (await loadSharp())(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).metadata();
    if (format) return `it is a ${format.toUpperCase()} file, not JPEG, PNG or WebP`;
  } catch {
    // not an image format the decoder knows either
  }
  const head = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it is not an image file (first bytes: ${head})`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}
