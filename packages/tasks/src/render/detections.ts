/**
 * An image with its detections drawn: a frame per box in its class's colour and, where text renders, a tag with the
 * label and score above the box (inside it at the top edge). The boxes and tags are one SVG composited over the
 * pixels by sharp; the image keeps its size.
 */
import { writeFileAtomic } from '@effnet/core';
import { loadSharp, type RgbImage } from '../images/decode.js';
import { type RenderedPng, RenderError, svgTextRenders } from './charts.js';
import { escapeXml, FONT_FAMILY, hex, TAB10, textWidth } from './svg.js';

/** What is drawn of a detection: its box [x1, y1, x2, y2] in the image's pixels, label, score and class id (its colour). */
export interface DrawnBox {
  box: readonly [number, number, number, number];
  label: string;
  score?: number;
  classId?: number;
}

export interface DetectionsPictureOptions {
  /** Draw the label tags; default: when svgTextRenders(). */
  text?: boolean;
  /** Frame width in pixels (default: 2, more on large images). */
  lineWidth?: number;
}

/** matplotlib's tab10: the colour of class id k is BOX_COLOURS[(k - 1) mod 10]. */
export const BOX_COLOURS = TAB10;

/** The frame colour of a class id (1-based; without one, the first colour). */
export function boxColour(classId = 1): readonly [number, number, number] {
  const i = (((Math.trunc(classId) - 1) % BOX_COLOURS.length) + BOX_COLOURS.length) % BOX_COLOURS.length;
  return BOX_COLOURS[Number.isFinite(i) ? i : 0]!;
}

/** The default frame width for an image: 2 px, or 1/250 of the longer side. */
export function defaultLineWidth(width: number, height: number): number {
  return Math.max(2, Math.round(Math.max(width, height) / 250));
}

/** The overlay as an SVG document of the image's size (what detectionsPng composites). */
export function detectionsSvg(width: number, height: number, boxes: readonly DrawnBox[], options: DetectionsPictureOptions & { text: boolean }): string {
  const lw = options.lineWidth ?? defaultLineWidth(width, height);
  const fontSize = Math.max(11, Math.round(lw * 6));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}">`];
  // Lowest score first, so that the best boxes and their tags end on top.
  const order = boxes.map((b, i) => i).sort((a, b) => (boxes[a]!.score ?? 0) - (boxes[b]!.score ?? 0));
  for (const i of order) {
    const d = boxes[i]!;
    if (d.box.length !== 4 || !d.box.every(Number.isFinite)) throw new RenderError(`boxes[${i}]`, `${JSON.stringify(d.box)} is not four finite numbers [x1, y1, x2, y2]`);
    const [x1, y1, x2, y2] = d.box.map((v, k) => Math.min(Math.max(v, 0), k % 2 === 0 ? width : height));
    const colour = hex(boxColour(d.classId));
    // The frame lies inside the box.
    const inset = lw / 2;
    parts.push(
      `<rect x="${x1! + inset}" y="${y1! + inset}" width="${Math.max(0, x2! - x1! - lw)}" height="${Math.max(0, y2! - y1! - lw)}" fill="none" stroke="${colour}" stroke-width="${lw}"/>`,
    );
    if (!options.text) continue;
    const caption = d.score === undefined ? d.label : `${d.label} ${d.score.toFixed(2)}`;
    const tagW = textWidth(caption, fontSize) + 6;
    const tagH = fontSize + 4;
    const tx = Math.min(x1!, Math.max(0, width - tagW));
    const ty = y1! >= tagH ? y1! - tagH : y1!;
    parts.push(`<rect x="${tx}" y="${ty}" width="${tagW}" height="${tagH}" fill="${colour}"/>`);
    parts.push(`<text x="${tx + 3}" y="${ty + fontSize}" font-size="${fontSize}" fill="#ffffff">${escapeXml(caption)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Writes the image with its detections drawn as a PNG (atomic write). */
export async function detectionsPng(image: RgbImage, boxes: readonly DrawnBox[], file: string, options: DetectionsPictureOptions = {}): Promise<RenderedPng> {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length !== width * height * 3)
    throw new RenderError('image', `${width}x${height} with ${data.length} bytes is not 8-bit RGB pixels (width * height * 3, HWC)`);
  if (options.lineWidth !== undefined && !(options.lineWidth > 0 && Number.isFinite(options.lineWidth))) throw new RenderError('lineWidth', `${options.lineWidth} is not a positive number of pixels`);
  const text = options.text ?? (await svgTextRenders());
  const svg = detectionsSvg(width, height, boxes, { ...options, text });
  const sharp = await loadSharp();
  const png = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }])
    .png()
    .toBuffer();
  await writeFileAtomic(file, png, { mkdir: true });
  return { file, width, height, text };
}
