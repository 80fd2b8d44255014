/** SVG text and colour helpers shared by the pictures in this folder (not part of the package's API). */

export const FONT_FAMILY = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';
/** Average advance of a character as a fraction of the font size (DejaVu Sans is about 0.55-0.6). */
export const CHAR_WIDTH = 0.6;

/** An 8-bit colour as #rrggbb. */
export function hex([r, g, b]: readonly [number, number, number]): string {
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[ch]!);
}

/** `s` cut to at most `maxChars` characters, with an ellipsis when cut. */
export function fit(s: string, maxChars: number): string {
  const chars = [...s];
  if (chars.length <= maxChars) return s;
  return maxChars <= 1 ? '…' : `${chars.slice(0, maxChars - 1).join('')}…`;
}

/** Estimated width of `s` at `fontSize` (CHAR_WIDTH per character). */
export function textWidth(s: string, fontSize: number): number {
  return [...s].length * fontSize * CHAR_WIDTH;
}

/** matplotlib's tab10, the one palette of the pictures (curves, boxes): series or class k takes colour k mod 10. */
export const TAB10: readonly (readonly [number, number, number])[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];
