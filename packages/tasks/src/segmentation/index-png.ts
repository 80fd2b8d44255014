/**
 * Index masks as PNG: one class index per pixel, read from 8-bit greyscale PNGs or from palette PNGs as their indices
 * (VOC's SegmentationClass files: index 255 = ignore, drawn in white), written as palette PNGs whose colours are the
 * overlay colours. A small decoder of its own, because image libraries expand palettes to RGB.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { EffnetError } from '@effnet/core';

export class MaskError extends EffnetError {
  override name = 'MaskError';
}

/** One class index per pixel, row-major. */
export interface IndexMask {
  data: Uint8Array;
  width: number;
  height: number;
}

/** 255: a pixel no loss or metric counts (VOC's object borders and "difficult" regions). */
export const IGNORE_INDEX = 255;

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Reads an index mask from PNG bytes: greyscale (values are indices) or palette (indices, not colours). */
export function decodeIndexPng(bytes: Uint8Array, name = '<mask>'): IndexMask {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new MaskError(`${name} is not a PNG; masks are index PNGs (greyscale or palette), one class index per pixel`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = -1;
  let interlace = 0;
  const idat: Uint8Array[] = [];
  while (pos + 8 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = view.getUint32(pos + 8);
      height = view.getUint32(pos + 12);
      depth = data[8]!;
      colorType = data[9]!;
      interlace = data[12]!;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  if (colorType !== 0 && colorType !== 3)
    throw new MaskError(`${name}: a ${colorType === 2 ? 'RGB' : colorType === 6 ? 'RGBA' : colorType === 4 ? 'grey+alpha' : 'PNG'} image; masks are greyscale or palette PNGs whose values are class indices (convert colour masks to indices first)`);
  if (colorType === 0 && depth !== 8) throw new MaskError(`${name}: ${depth}-bit greyscale; masks are 8-bit greyscale or palette PNGs`);
  if (interlace !== 0) throw new MaskError(`${name}: an interlaced PNG; save the mask without interlacing`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = Math.ceil((width * depth) / 8);
  if (raw.length < height * (stride + 1)) throw new MaskError(`${name}: truncated image data`);
  const rows = new Uint8Array(height * stride);
  const prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= 1 ? out[i - 1]! : 0;
      const b = prev[i]!;
      const c = i >= 1 ? prev[i - 1]! : 0;
      let v = line[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new MaskError(`${name}: unknown PNG filter ${filter}`);
      out[i] = v & 255;
    }
    prev.set(out);
  }
  const mask = new Uint8Array(width * height);
  const perByte = 8 / depth;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      if (depth === 8) mask[y * width + x] = rows[y * stride + x]!;
      else {
        const byte = rows[y * stride + Math.floor(x / perByte)]!;
        const shift = 8 - depth * ((x % perByte) + 1);
        mask[y * width + x] = (byte >> shift) & ((1 << depth) - 1);
      }
    }
  return { data: mask, width, height };
}

/** The overlay colour of each class index (VOC's colour map: index bits spread over R, G, B); 255 is white. */
export function classColor(index: number): [number, number, number] {
  if (index === IGNORE_INDEX) return [255, 255, 255];
  let r = 0;
  let g = 0;
  let b = 0;
  let c = index;
  for (let j = 0; j < 8; j++) {
    r |= ((c >> 0) & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  return [r, g, b];
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  let crc = 0xffffffff;
  for (const b of out.subarray(4, 8 + data.length)) crc = CRC_TABLE[(crc ^ b) & 255]! ^ (crc >>> 8);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0, 8 + data.length);
  return out;
}

/** An index mask as an 8-bit palette PNG (VOC's colour map), so that it reads back as indices and shows as colours. */
export function encodeIndexPng(mask: IndexMask): Buffer {
  const { width, height, data } = mask;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 3;
  const palette = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) palette.set(classColor(i), i * 3);
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) raw.set(data.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  return Buffer.concat([Buffer.from(SIGNATURE), chunk('IHDR', ihdr), chunk('PLTE', palette), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}
