/**
 * Pictures for people: a confusion-matrix heat map and a contact sheet of captioned thumbnails, drawn as SVG
 * and rasterised to PNG by sharp (librsvg, with the system's fonts through fontconfig). Text needs a font:
 * `svgTextRenders()` checks once, and without one the pictures are drawn without text (the result's `text`
 * is false) rather than failing.
 */
import { EffnetError, type Rgb, writeFileAtomic } from '@effnet/core';
import { CHAR_WIDTH, escapeXml, fit, FONT_FAMILY, hex, textWidth } from './svg.js';
import { loadSharp } from '../images/decode.js';


/** A picture that cannot be drawn from the given input. Names the argument and what would fix it. */
export class RenderError extends EffnetError {
  override name = 'RenderError';
  constructor(
    readonly argument: string,
    readonly reason: string,
  ) {
    super(`${argument}: ${reason}`);
  }
}


/** The heat map's colour ramp (matplotlib's "Blues", from pure white at 0 to dark blue at 1). */
export const HEAT_RAMP: readonly Rgb[] = [
  [255, 255, 255],
  [222, 235, 247],
  [198, 219, 239],
  [158, 202, 225],
  [107, 174, 214],
  [66, 146, 198],
  [33, 113, 181],
  [8, 81, 156],
  [8, 48, 107],
];

/** The ramp's colour at t in [0, 1] (clamped), linearly interpolated between stops and rounded to bytes. */
export function heatColor(t: number): Rgb {
  const x = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (HEAT_RAMP.length - 1);
  const i = Math.min(Math.floor(x), HEAT_RAMP.length - 2);
  const f = x - i;
  const a = HEAT_RAMP[i]!;
  const b = HEAT_RAMP[i + 1]!;
  return [0, 1, 2].map((c) => Math.round(a[c]! + (b[c]! - a[c]!) * f)) as Rgb;
}

let textCheck: Promise<boolean> | undefined;

/** Whether SVG text rasterises here (a font is installed and found); checked once per process. */
export function svgTextRenders(): Promise<boolean> {
  textCheck ??= (async () => {
    try {
      const sharp = await loadSharp();
      const svg =
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="24"><rect width="64" height="24" fill="#fff"/>' +
        `<text x="2" y="18" font-family="${FONT_FAMILY}" font-size="16" fill="#000">Ag8</text></svg>`;
      const { data, info } = await sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).raw().toBuffer({ resolveWithObject: true });
      for (let i = 0; i < data.length; i += info.channels) if (data[i]! < 128) return true;
      return false;
    } catch {
      return false;
    }
  })();
  return textCheck;
}

/** SVG text to PNG bytes (sharp, with librsvg). */
export async function rasterise(svg: string): Promise<Buffer> {
  const sharp = await loadSharp();
  return sharp(Buffer.from(svg), { density: 72 }).flatten({ background: '#ffffff' }).png().toBuffer();
}

// ---------------------------------------------------------------------------------------------------------
// Confusion heat map

export interface HeatmapOptions {
  /** Side of a cell in pixels (default: 56, smaller for many classes so the picture stays under ~1000 px). */
  cellSize?: number;
  /** Title above the matrix (default "confusion matrix (rows normalised to the true class)"). */
  title?: string;
  /** Draw text (class names, counts, title); default: when svgTextRenders(). */
  text?: boolean;
}

const DEFAULT_HEATMAP_TITLE = 'confusion matrix (rows normalised to the true class)';

export interface HeatmapLayout {
  width: number;
  height: number;
  cellSize: number;
  /** Top-left corner of cell (0, 0); cell (row t, column p) starts at (originX + p * cellSize, originY + t * cellSize). */
  originX: number;
  originY: number;
  fontSize: number;
}

/** Where everything goes in the heat map of `classNames`; a pure function, so tests can find a cell's pixels. */
export function heatmapLayout(classNames: readonly string[], options: { cellSize?: number; text?: boolean; title?: string } = {}): HeatmapLayout {
  const k = classNames.length;
  const cellSize = options.cellSize ?? Math.max(6, Math.min(56, Math.floor(900 / Math.max(k, 1))));
  const text = options.text ?? true;
  const fontSize = Math.max(8, Math.min(13, Math.floor(cellSize * 0.8)));
  const showNames = text && cellSize >= 10;
  const longest = showNames ? Math.max(...classNames.map((n) => textWidth(fit(n, 24), fontSize))) : 0;
  const pad = 12;
  const titleH = text ? 30 : pad;
  // Left: axis title (rotated) + row names. Bottom: column names at 45 degrees + axis title. Right: colour bar.
  const originX = pad + (text ? Math.max(fontSize, 11) + 10 : 0) + (showNames ? longest + 8 : 0);
  const originY = titleH + 6;
  const axisSize = Math.max(fontSize, 11);
  const bottom = (showNames ? longest * Math.SQRT1_2 + fontSize * 0.7 + 8 : 0) + (text ? axisSize + 8 : 0) + pad;
  const colourBar = 18 + (text ? 44 : 0) + pad;
  const titleW = text ? textWidth(options.title ?? DEFAULT_HEATMAP_TITLE, 14) * 1.1 + 2 * pad : 0;
  const width = Math.ceil(Math.max(originX + k * cellSize + 16 + colourBar, titleW));
  const height = Math.ceil(originY + k * cellSize + bottom);
  return { width, height, cellSize, originX: Math.round(originX), originY: Math.round(originY), fontSize };
}

function checkConfusion(confusion: readonly (readonly number[])[], classNames: readonly string[]): void {
  const k = classNames.length;
  if (k === 0) throw new RenderError('classNames', 'is empty; pass one name per row of the confusion matrix');
  if (confusion.length !== k || confusion.some((row) => row.length !== k)) {
    throw new RenderError(
      'confusion',
      `must be ${k}x${k} to match ${k} class names, got ${confusion.length} rows of lengths ${[...new Set(confusion.map((r) => r.length))].join('/')}`,
    );
  }
  confusion.forEach((row, t) =>
    row.forEach((v, p) => {
      if (!Number.isFinite(v) || v < 0) throw new RenderError('confusion', `cell [${t}][${p}] is ${v}; counts must be finite and non-negative`);
    }),
  );
}

/** The heat map as an SVG document (what confusionHeatmapPng rasterises). */
export function confusionHeatmapSvg(
  confusion: readonly (readonly number[])[],
  classNames: readonly string[],
  options: HeatmapOptions & { text: boolean },
): string {
  checkConfusion(confusion, classNames);
  const k = classNames.length;
  const L = heatmapLayout(classNames, options);
  const { cellSize: cs, originX: ox, originY: oy, fontSize: fs } = L;
  const text = options.text;
  const showNames = text && cs >= 10;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}" font-family="${FONT_FAMILY}">`,
    `<rect width="${L.width}" height="${L.height}" fill="#ffffff"/>`,
  ];
  if (text) {
    const title = options.title ?? DEFAULT_HEATMAP_TITLE;
    parts.push(`<text x="12" y="20" font-size="14" font-weight="bold" fill="#222">${escapeXml(title)}</text>`);
  }
  for (let t = 0; t < k; t++) {
    const row = confusion[t]!;
    const support = row.reduce((s, v) => s + v, 0);
    for (let p = 0; p < k; p++) {
      const v = row[p]!;
      const frac = support > 0 ? v / support : 0;
      const x = ox + p * cs;
      const y = oy + t * cs;
      parts.push(`<rect x="${x}" y="${y}" width="${cs}" height="${cs}" fill="${hex(heatColor(frac))}" shape-rendering="crispEdges"/>`);
      if (text && cs >= 24) {
        const ink = frac > 0.5 ? '#ffffff' : '#1a1a1a';
        const countSize = Math.min(14, Math.floor(cs * 0.3));
        const showPct = cs >= 44 && v > 0;
        const cy = y + cs / 2 + (showPct ? -2 : countSize * 0.35);
        parts.push(
          `<text x="${x + cs / 2}" y="${cy}" font-size="${countSize}" text-anchor="middle" fill="${ink}"${p === t ? ' font-weight="bold"' : ''}>${fit(String(v), Math.floor(cs / (countSize * CHAR_WIDTH)))}</text>`,
        );
        if (showPct) {
          parts.push(
            `<text x="${x + cs / 2}" y="${y + cs / 2 + 12}" font-size="${Math.min(10, countSize - 2)}" text-anchor="middle" fill="${ink}">${Math.round(frac * 100)}%</text>`,
          );
        }
      }
    }
  }
  // Grid frame.
  parts.push(`<rect x="${ox - 0.5}" y="${oy - 0.5}" width="${k * cs + 1}" height="${k * cs + 1}" fill="none" stroke="#888" stroke-width="1"/>`);
  if (showNames) {
    for (let i = 0; i < k; i++) {
      const name = escapeXml(fit(classNames[i]!, 24));
      // Row names, right-aligned left of the matrix.
      parts.push(`<text x="${ox - 6}" y="${oy + i * cs + cs / 2 + fs * 0.35}" font-size="${fs}" text-anchor="end" fill="#222">${name}</text>`);
      // Column names under the matrix, at 45 degrees.
      const cx = ox + i * cs + cs / 2 + fs * 0.3;
      const cy = oy + k * cs + 8;
      parts.push(`<text x="${cx}" y="${cy}" font-size="${fs}" text-anchor="end" transform="rotate(-45 ${cx} ${cy})" fill="#222">${name}</text>`);
    }
  }
  if (text) {
    const midY = oy + (k * cs) / 2;
    const axisSize = Math.max(fs, 11);
    const axisX = 12 + axisSize;
    parts.push(`<text x="${axisX}" y="${midY}" font-size="${axisSize}" font-style="italic" text-anchor="middle" transform="rotate(-90 ${axisX} ${midY})" fill="#444">true class</text>`);
    parts.push(`<text x="${ox + (k * cs) / 2}" y="${L.height - 12}" font-size="${axisSize}" font-style="italic" text-anchor="middle" fill="#444">predicted class</text>`);
  }
  // Colour bar: the ramp from 0 (bottom) to 1 (top), with its scale.
  const barX = ox + k * cs + 16;
  const barH = k * cs;
  const stops = HEAT_RAMP.map((c, i) => `<stop offset="${(i / (HEAT_RAMP.length - 1)).toFixed(4)}" stop-color="${hex(c)}"/>`).join('');
  parts.push(`<defs><linearGradient id="ramp" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient></defs>`);
  parts.push(`<rect x="${barX}" y="${oy}" width="18" height="${barH}" fill="url(#ramp)" stroke="#888" stroke-width="1"/>`);
  if (text) {
    for (const [f, label] of [[1, '100%'], [0.5, '50%'], [0, '0%']] as const) {
      parts.push(`<text x="${barX + 22}" y="${oy + (1 - f) * barH + 4}" font-size="10" fill="#444">${label}</text>`);
    }
  }
  parts.push('</svg>');
  return parts.join('\n');
}

export interface RenderedPng {
  file: string;
  width: number;
  height: number;
  /** Whether text was drawn (false where no font is available). */
  text: boolean;
}

/**
 * Writes the confusion matrix as a heat map PNG: cells coloured by the row-normalised fraction (white 0,
 * dark blue 1), with counts, percentages, class names and a colour bar when text renders. Atomic write.
 */
export async function confusionHeatmapPng(
  confusion: readonly (readonly number[])[],
  classNames: readonly string[],
  file: string,
  options: HeatmapOptions = {},
): Promise<RenderedPng> {
  const text = options.text ?? (await svgTextRenders());
  const svg = confusionHeatmapSvg(confusion, classNames, { ...options, text });
  const { width, height } = heatmapLayout(classNames, { ...options, text });
  await writeFileAtomic(file, await rasterise(svg), { mkdir: true });
  return { file, width, height, text };
}

// ---------------------------------------------------------------------------------------------------------
// Contact sheet

export interface SheetImage {
  /** uint8 HWC pixels with 1 (grey), 3 (RGB) or 4 (RGBA) channels, inferred from the length. */
  data: Uint8Array;
  width: number;
  height: number;
  /** Text under the thumbnail; "\n" starts a second line (at most two are drawn). */
  caption: string;
  /** true: green frame and caption; false: red; absent: neutral grey. */
  ok?: boolean;
}

export interface ContactSheetOptions {
  /** Thumbnails per row (default: up to 8). */
  columns?: number;
  /** Side of the square a thumbnail is fitted into, in pixels (default 96). */
  thumbSize?: number;
  /** Title above the grid. */
  title?: string;
  /** Draw captions and title; default: when svgTextRenders(). */
  text?: boolean;
}

export interface ContactSheetLayout {
  width: number;
  height: number;
  columns: number;
  rows: number;
  cellWidth: number;
  cellHeight: number;
  /** Top-left corner of the thumbnail square of image i: (originX + (i % columns) * cellWidth + pad, originY + row * cellHeight + pad). */
  originX: number;
  originY: number;
  pad: number;
  thumbSize: number;
}

const OK_COLOUR = '#2ca02c';
const BAD_COLOUR = '#d62728';
const NEUTRAL_COLOUR = '#c8c8c8';
const CAPTION_SIZE = 11;

/** Where each thumbnail goes on a sheet of `count` images; a pure function, so tests can find a thumbnail's pixels. */
export function contactSheetLayout(count: number, options: { columns?: number; thumbSize?: number; title?: string; text?: boolean } = {}): ContactSheetLayout {
  const thumbSize = options.thumbSize ?? 96;
  const columns = options.columns ?? Math.min(8, Math.max(1, count));
  if (!Number.isInteger(columns) || columns < 1) throw new RenderError('columns', `${columns} is not a positive integer`);
  if (!Number.isInteger(thumbSize) || thumbSize < 8 || thumbSize > 2048) {
    throw new RenderError('thumbSize', `${thumbSize} is not an integer from 8 to 2048 pixels`);
  }
  const text = options.text ?? true;
  const rows = Math.ceil(count / columns);
  const pad = 6;
  const cellWidth = thumbSize + 2 * pad;
  const cellHeight = thumbSize + 2 * pad + (text ? 2 * (CAPTION_SIZE + 3) + 2 : 0);
  const originX = 8;
  const originY = text && options.title ? 30 : 8;
  return { width: originX * 2 + columns * cellWidth, height: originY + rows * cellHeight + 8, columns, rows, cellWidth, cellHeight, originX, originY, pad, thumbSize };
}

/**
 * Writes a grid of thumbnails with a caption under each, framed green (ok), red (not ok) or grey (no
 * verdict). Images are fitted into thumbSize squares, enlarged with nearest-neighbour (so small inputs
 * stay crisp) and reduced with Lanczos. Atomic write.
 */
export async function contactSheetPng(images: readonly SheetImage[], file: string, options: ContactSheetOptions = {}): Promise<RenderedPng> {
  if (images.length === 0) throw new RenderError('images', 'is empty; pass at least one image');
  const text = options.text ?? (await svgTextRenders());
  const L = contactSheetLayout(images.length, { ...options, text });
  const sharp = await loadSharp();
  const composites: { input: Buffer; left: number; top: number; raw?: { width: number; height: number; channels: 3 } }[] = [];
  const svg: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" font-family="${FONT_FAMILY}">`,
  ];
  if (text && options.title) svg.push(`<text x="${L.originX}" y="20" font-size="14" font-weight="bold" fill="#222">${escapeXml(options.title)}</text>`);
  const maxChars = Math.max(1, Math.floor(L.thumbSize / (CAPTION_SIZE * CHAR_WIDTH)) + 1);

  for (let i = 0; i < images.length; i++) {
    const img = images[i]!;
    const { width, height, data } = img;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RenderError(`images[${i}]`, `size ${width}x${height} is not positive integers`);
    }
    const channels = data.length / (width * height);
    if (channels !== 1 && channels !== 3 && channels !== 4) {
      throw new RenderError(`images[${i}]`, `has ${data.length} bytes for ${width}x${height}; expected 1, 3 or 4 uint8 channels (HWC)`);
    }
    const scale = Math.min(L.thumbSize / width, L.thumbSize / height);
    const tw = Math.max(1, Math.round(width * scale));
    const th = Math.max(1, Math.round(height * scale));
    const thumb = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } })
      .resize(tw, th, { kernel: scale >= 1 ? 'nearest' : 'lanczos3', fit: 'fill' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const col = i % L.columns;
    const row = Math.floor(i / L.columns);
    const x0 = L.originX + col * L.cellWidth + L.pad;
    const y0 = L.originY + row * L.cellHeight + L.pad;
    const left = x0 + Math.floor((L.thumbSize - thumb.info.width) / 2);
    const top = y0 + Math.floor((L.thumbSize - thumb.info.height) / 2);
    composites.push({ input: thumb.data, left, top, raw: { width: thumb.info.width, height: thumb.info.height, channels: 3 } });

    const colour = img.ok === true ? OK_COLOUR : img.ok === false ? BAD_COLOUR : NEUTRAL_COLOUR;
    const stroke = img.ok === undefined ? 1 : 3;
    // Frame just outside the thumbnail square.
    svg.push(
      `<rect x="${x0 - stroke / 2 - 1}" y="${y0 - stroke / 2 - 1}" width="${L.thumbSize + stroke + 2}" height="${L.thumbSize + stroke + 2}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`,
    );
    if (text) {
      const ink = img.ok === true ? '#1b6e1b' : img.ok === false ? '#b01e1e' : '#222';
      const lines = img.caption.split('\n').slice(0, 2);
      lines.forEach((line, j) => {
        const y = y0 + L.thumbSize + L.pad + CAPTION_SIZE + j * (CAPTION_SIZE + 3);
        svg.push(
          `<text x="${x0 + L.thumbSize / 2}" y="${y}" font-size="${CAPTION_SIZE}" text-anchor="middle" fill="${ink}">${escapeXml(fit(line, maxChars))}</text>`,
        );
      });
    }
  }
  svg.push('</svg>');
  composites.push({ input: Buffer.from(svg.join('\n')), left: 0, top: 0 });
  const png = await sharp({ create: { width: L.width, height: L.height, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
  await writeFileAtomic(file, png, { mkdir: true });
  return { file, width: L.width, height: L.height, text };
}
