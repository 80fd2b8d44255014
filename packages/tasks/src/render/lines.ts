/**
 * Line charts as PNG: training curves (loss, metrics, learning rate by epoch or step), a learning-rate finder's
 * loss-by-rate curve, precision-recall curves. Panels side by side, each with its own axes and series; drawn as SVG,
 * rasterised by sharp like the other pictures in this folder.
 */
import { writeFileAtomic } from '@effnet/core';
import { rasterise, RenderError, type RenderedPng, svgTextRenders } from './charts.js';
import { escapeXml, FONT_FAMILY, hex, TAB10 } from './svg.js';

export interface Series {
  name: string;
  /** [x, y] points; non-finite ys are gaps. */
  points: readonly (readonly [number, number])[];
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel?: string;
  series: readonly Series[];
  /** Logarithmic x axis (learning rates). */
  logX?: boolean;
  /** Fixed y range (e.g. [0, 1] for accuracy); default the data's. */
  yRange?: [number, number];
  /** A vertical marker (e.g. the suggested learning rate). */
  markX?: { x: number; label: string };
}

const COLOURS = TAB10;

const PANEL_W = 360;
const PANEL_H = 260;
const M = { left: 56, right: 16, top: 34, bottom: 42 };

/** Round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = 10 ** Math.floor(Math.log10((hi - lo) / count));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= count) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + nice * 1e-9; v += nice) out.push(+v.toPrecision(12));
  return out;
}

const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(3)));

function panelSvg(p: Panel, x0: number, text: boolean): string {
  const pts = p.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.logX || x > 0)));
  const tx = (x: number) => (p.logX ? Math.log10(x) : x);
  let [xlo, xhi] = pts.length ? [Math.min(...pts.map((q) => tx(q[0]))), Math.max(...pts.map((q) => tx(q[0])))] : [0, 1];
  let [ylo, yhi] = p.yRange ?? (pts.length ? [Math.min(...pts.map((q) => q[1])), Math.max(...pts.map((q) => q[1]))] : [0, 1]);
  if (xhi === xlo) [xlo, xhi] = [xlo - 1, xhi + 1];
  if (yhi === ylo) [ylo, yhi] = [ylo - 1, yhi + 1];
  const w = PANEL_W - M.left - M.right;
  const h = PANEL_H - M.top - M.bottom;
  const X = (x: number) => x0 + M.left + ((tx(x) - xlo) / (xhi - xlo)) * w;
  const Y = (y: number) => M.top + h - ((y - ylo) / (yhi - ylo)) * h;
  const parts: string[] = [`<rect x="${x0 + M.left}" y="${M.top}" width="${w}" height="${h}" fill="#fff" stroke="#999"/>`];
  const xt = p.logX ? ticks(Math.floor(xlo), Math.ceil(xhi), 6).filter((e) => Number.isInteger(e)).map((e) => 10 ** e) : ticks(xlo, xhi);
  for (const v of xt) {
    if (tx(v) < xlo - 1e-9 || tx(v) > xhi + 1e-9) continue;
    parts.push(`<line x1="${X(v)}" y1="${M.top}" x2="${X(v)}" y2="${M.top + h}" stroke="#eee"/>`);
    if (text) parts.push(`<text x="${X(v)}" y="${M.top + h + 14}" font-size="10" text-anchor="middle">${fmt(v)}</text>`);
  }
  for (const v of ticks(ylo, yhi)) {
    parts.push(`<line x1="${x0 + M.left}" y1="${Y(v)}" x2="${x0 + M.left + w}" y2="${Y(v)}" stroke="#eee"/>`);
    if (text) parts.push(`<text x="${x0 + M.left - 4}" y="${Y(v) + 3}" font-size="10" text-anchor="end">${fmt(v)}</text>`);
  }
  p.series.forEach((s, i) => {
    const colour = hex(COLOURS[i % COLOURS.length]!);
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y) || (p.logX && x <= 0)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${X(x).toFixed(1)},${Y(Math.min(yhi, Math.max(ylo, y))).toFixed(1)}`;
      pen = true;
    }
    parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.8"/>`);
    if (s.points.length <= 40) for (const [x, y] of s.points) if (Number.isFinite(x) && Number.isFinite(y)) parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="2.2" fill="${colour}"/>`);
    if (text) parts.push(`<text x="${x0 + M.left + 6}" y="${M.top + 14 + i * 13}" font-size="11" fill="${colour}">${escapeXml(s.name)}</text>`);
  });
  if (p.markX && Number.isFinite(p.markX.x)) {
    parts.push(`<line x1="${X(p.markX.x)}" y1="${M.top}" x2="${X(p.markX.x)}" y2="${M.top + h}" stroke="#d62728" stroke-dasharray="4 3"/>`);
    if (text) parts.push(`<text x="${X(p.markX.x) + 4}" y="${M.top + h - 6}" font-size="10" fill="#d62728">${escapeXml(p.markX.label)}</text>`);
  }
  if (text) {
    parts.push(`<text x="${x0 + PANEL_W / 2}" y="20" font-size="13" text-anchor="middle" font-weight="bold">${escapeXml(p.title)}</text>`);
    parts.push(`<text x="${x0 + M.left + w / 2}" y="${PANEL_H - 8}" font-size="11" text-anchor="middle">${escapeXml(p.xLabel)}</text>`);
    if (p.yLabel) parts.push(`<text transform="translate(${x0 + 13} ${M.top + h / 2}) rotate(-90)" font-size="11" text-anchor="middle">${escapeXml(p.yLabel)}</text>`);
  }
  return parts.join('');
}

/** The panels side by side as one SVG. */
export function lineChartSvg(panels: readonly Panel[], o: { text?: boolean } = {}): string {
  if (!panels.length) throw new RenderError('panels', 'is empty; pass at least one panel');
  const text = o.text ?? true;
  const width = PANEL_W * panels.length;
  const body = panels.map((p, i) => panelSvg(p, i * PANEL_W, text)).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL_H}" font-family="${FONT_FAMILY}"><rect width="100%" height="100%" fill="#fafafa"/>${body}</svg>`;
}

/** Writes the panels as a PNG (text drawn where the system can render it). */
export async function lineChartPng(panels: readonly Panel[], file: string): Promise<RenderedPng> {
  const text = await svgTextRenders();
  await writeFileAtomic(file, await rasterise(lineChartSvg(panels, { text })), { mkdir: true });
  return { file, width: PANEL_W * panels.length, height: PANEL_H, text };
}

/**
 * A run's curves from its history rows: training loss, the validation metrics (and training accuracy where there is
 * one), and the learning rate, by epoch.
 */
export function trainingCurvePanels(history: readonly Record<string, number>[], metrics: readonly string[]): Panel[] {
  const by = (key: string): Series => ({ name: key, points: history.map((h) => [h.epoch ?? Number.NaN, h[key] ?? Number.NaN] as const) });
  const quality = metrics.filter((m) => history.some((h) => Number.isFinite(h[m])));
  return [
    { title: 'loss', xLabel: 'epoch', series: [by('trainLoss')] },
    { title: quality.join(', ') || 'validation', xLabel: 'epoch', series: quality.map(by), yRange: quality.every((m) => history.every((h) => !Number.isFinite(h[m]) || (h[m]! >= 0 && h[m]! <= 1))) ? [0, 1] : undefined },
    { title: 'learning rate', xLabel: 'epoch', series: [by('lr')] },
  ];
}
