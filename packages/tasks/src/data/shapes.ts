/**
 * Labelled synthetic images for smoke-training a classifier without downloading a dataset: one shape
 * (circle, cross, ring, square, star, triangle) on a textured background, with a random colour that
 * contrasts with the background, size, rotation, position, fill texture (solid, stripes, dots) and pixel
 * noise. Edges are antialiased by supersampling. Every image is a pure function of (seed, index):
 * `shapeParams` draws the record, `renderShape` turns it into pixels.
 */
import { deriveSeed, forEachConcurrent, InvalidSpecError, type Rgb, seededNormal, seededRandom, writeFileAtomic } from '@effnet/core';
import { join } from 'node:path';
import { loadSharp } from '../images/decode.js';


/** Sorted, so a label here is the label torchvision's ImageFolder gives the written dataset's class directory. */
export const SHAPE_CLASSES = ['circle', 'cross', 'ring', 'square', 'star', 'triangle'] as const;
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

export const SHAPE_FILLS = ['solid', 'stripes', 'dots'] as const;
export type ShapeFill = (typeof SHAPE_FILLS)[number];


/** Everything that determines one image; drawn by `shapeParams`, rendered by `renderShape`. */
export interface ShapeParams {
  size: number;
  label: number;
  className: ShapeClass;
  /** Centre of the shape in pixels (x right, y down; pixel i covers [i, i+1)). */
  cx: number;
  cy: number;
  /** Circumradius in pixels: the shape lies inside the circle of this radius around (cx, cy). */
  radius: number;
  /** Rotation in radians. */
  rotation: number;
  /** Class-specific proportion: ring inner radius, star inner radius, cross arm half-width (fractions of radius). */
  detail: number;
  fill: ShapeFill;
  /** Main fill colour and the second colour of stripes and dots. */
  color: Rgb;
  color2: Rgb;
  /** Stripe or dot period in pixels, stripe direction in radians. */
  period: number;
  stripeAngle: number;
  /** Background: gradient from bg0 to bg1 along bgAngle, plus a smooth colour-noise field of `bgNoise` amplitude. */
  bg0: Rgb;
  bg1: Rgb;
  bgAngle: number;
  bgNoise: number;
  bgGrid: number;
  /** Standard deviation of the per-pixel noise, in grey levels. */
  pixelNoise: number;
}

export interface ShapeImage {
  /** RGB uint8, HWC, row-major. */
  data: Uint8Array;
  width: number;
  height: number;
  label: number;
  className: ShapeClass;
}

export interface ShapeOptions {
  /** Side of the square image in pixels (default 64). */
  size?: number;
  /** Samples per pixel along each axis for antialiasing (default 4, so 16 per pixel). */
  supersample?: number;
}

const DEFAULT_SIZE = 64;
/** Smallest RGB distance between the shape colour and the mean background colour we try for. */
const MIN_CONTRAST = 150;

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 8 || size > 4096) {
    throw new InvalidSpecError('size', size, 'an integer number of pixels from 8 to 4096');
  }
}

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0) {
    throw new InvalidSpecError('index', index, 'a non-negative integer');
  }
}

function distance(a: Rgb, b: Rgb): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** The class of image `index`: classes cycle, so any run of SHAPE_CLASSES.length indices is balanced. */
export function shapeLabel(index: number): number {
  return index % SHAPE_CLASSES.length;
}

export type Background = Pick<ShapeParams, 'bg0' | 'bg1' | 'bgAngle' | 'bgNoise' | 'bgGrid'>;
/** What `renderLayers` paints under the shapes: image side, background and per-pixel noise. */
export type SceneBackground = Background & Pick<ShapeParams, 'size' | 'pixelNoise'>;

/** A base colour, a second one near it (a gentle gradient), smooth noise on top. */
/** @internal shared with the scene generator */
export function drawBackground(rand: () => number): Background {
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rand();
  const bg0 = randomRgb(rand);
  const bg1: Rgb = [clampByte(bg0[0] + uniform(-60, 60)), clampByte(bg0[1] + uniform(-60, 60)), clampByte(bg0[2] + uniform(-60, 60))];
  return { bg0, bg1, bgAngle: uniform(0, 2 * Math.PI), bgNoise: uniform(8, 28), bgGrid: 3 + Math.floor(rand() * 4) };
}

function randomRgb(rand: () => number): Rgb {
  return [Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256)];
}

/** A fill colour that contrasts with the background's mean, and its darker or lighter second texture colour. */
/** @internal shared with the scene generator */
export function drawColors(rand: () => number, bg: Background): { color: Rgb; color2: Rgb } {
  const bgMean: Rgb = [(bg.bg0[0] + bg.bg1[0]) / 2, (bg.bg0[1] + bg.bg1[1]) / 2, (bg.bg0[2] + bg.bg1[2]) / 2];
  // The first of a few random draws far enough from the background, else the farthest one.
  let color = randomRgb(rand);
  let best = distance(color, bgMean);
  for (let attempt = 1; attempt < 32 && best < MIN_CONTRAST; attempt++) {
    const c = randomRgb(rand);
    const d = distance(c, bgMean);
    if (d > best) {
      color = c;
      best = d;
    }
  }
  // The second texture colour: the shape colour darkened or lightened, whichever stays farther from the background.
  const darker: Rgb = [color[0] * 0.5, color[1] * 0.5, color[2] * 0.5].map(Math.round) as unknown as Rgb;
  const lighter: Rgb = color.map((c) => Math.round(c + (255 - c) * 0.5)) as unknown as Rgb;
  return { color, color2: distance(darker, bgMean) >= distance(lighter, bgMean) ? darker : lighter };
}

/** Class-specific proportion and the fill texture. */
/** @internal shared with the scene generator */
export function drawLook(rand: () => number, className: ShapeClass, size: number): Pick<ShapeParams, 'detail' | 'fill' | 'period' | 'stripeAngle'> {
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rand();
  const detail =
    className === 'ring' ? uniform(0.45, 0.65) : className === 'star' ? uniform(0.38, 0.48) : className === 'cross' ? uniform(0.2, 0.3) : 0;
  const fill = SHAPE_FILLS[Math.floor(rand() * SHAPE_FILLS.length)]!;
  const period = Math.max(3, uniform(0.06, 0.14) * size);
  return { detail, fill, period, stripeAngle: uniform(0, Math.PI) };
}

/** Draws the parameters of image `index` of the stream `seed`. */
export function shapeParams(seed: number, index: number, options: { size?: number } = {}): ShapeParams {
  const size = options.size ?? DEFAULT_SIZE;
  checkSize(size);
  checkIndex(index);
  const rand = seededRandom(deriveSeed(seed, index, 0));
  const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rand();

  const label = shapeLabel(index);
  const className = SHAPE_CLASSES[label]!;
  const background = drawBackground(rand);
  const { color, color2 } = drawColors(rand, background);

  // Geometry: extent (circumscribed diameter) 30-80% of the image, fully inside it.
  const extent = uniform(0.3, 0.8) * size;
  const radius = extent / 2;
  const cx = uniform(radius, size - radius);
  const cy = uniform(radius, size - radius);
  const rotation = uniform(0, 2 * Math.PI);
  const { detail, fill, period, stripeAngle } = drawLook(rand, className, size);
  const pixelNoise = uniform(2, 9);
  const { bg0, bg1, bgAngle, bgNoise, bgGrid } = background;

  return {
    size, label, className, cx, cy, radius, rotation, detail, fill, color, color2, period, stripeAngle,
    bg0, bg1, bgAngle, bgNoise, bgGrid, pixelNoise,
  };
}

/** Whether the point (u, v), in the shape's own frame with the circumradius scaled to 1, is inside the shape. */
function insideShape(className: ShapeClass, detail: number, u: number, v: number): boolean {
  switch (className) {
    case 'circle':
      return u * u + v * v <= 1;
    case 'ring': {
      const r2 = u * u + v * v;
      return r2 <= 1 && r2 >= detail * detail;
    }
    case 'square':
      return Math.abs(u) <= Math.SQRT1_2 && Math.abs(v) <= Math.SQRT1_2;
    case 'triangle':
      // Equilateral, vertices on the unit circle (one pointing up, -v); inradius 1/2, edge normals at 90, 210, 330 degrees.
      return v <= 0.5 && -0.8660254037844386 * u - 0.5 * v <= 0.5 && 0.8660254037844386 * u - 0.5 * v <= 0.5;
    case 'star':
      return insideStar(u, v, detail);
    case 'cross': {
      const w = detail;
      const l = Math.sqrt(1 - w * w);
      const au = Math.abs(u);
      const av = Math.abs(v);
      return (au <= w && av <= l) || (av <= w && au <= l);
    }
  }
}

const STAR_SECTOR = (2 * Math.PI) / 5;

/** Five-pointed star with outer radius 1 (a point upwards) and inner radius `inner`. */
function insideStar(u: number, v: number, inner: number): boolean {
  const r = Math.hypot(u, v);
  if (r > 1) return false;
  if (r <= inner * 0.80901699) return true; // inside the inner pentagon's incircle
  // Angle measured from the upward point; fold into the half-sector [0, pi/5] between a point and a notch.
  let a = Math.atan2(u, -v);
  a = ((a % STAR_SECTOR) + STAR_SECTOR) % STAR_SECTOR;
  const b = a <= STAR_SECTOR / 2 ? a : STAR_SECTOR - a;
  const px = r * Math.cos(b);
  const py = r * Math.sin(b);
  // Edge from the point O=(1,0) to the notch I=(inner cos(pi/5), inner sin(pi/5)); inside means the origin's side.
  const ix = inner * 0.80901699437;
  const iy = inner * 0.58778525229;
  const ex = ix - 1;
  const ey = iy;
  const crossP = ex * py - ey * (px - 1);
  const crossOrigin = ex * 0 - ey * (0 - 1);
  return crossP * crossOrigin >= 0;
}

/** Renders a parameter record to RGB uint8 HWC. `noiseSeed` drives the per-pixel noise. */
export function renderShape(p: ShapeParams, noiseSeed: number, options: { supersample?: number } = {}): Uint8Array {
  return renderLayers(p, [p], noiseSeed, options.supersample ?? 4).data;
}

/** One shape's pixels as `renderLayers` found them: the tight box of its covered sub-samples, in pixels. */
export interface LayerExtent {
  /** `[x0, y0, x1, y1]`, x right and y down; empty (x1 < x0) when no sub-sample fell inside. */
  box: [number, number, number, number];
  /** Covered area in pixels (sub-samples / supersample^2). */
  area: number;
}

export interface RenderedLayers {
  data: Uint8Array;
  /** Per pixel, 1 + the index of the topmost shape covering at least half of it, 0 for background. */
  instances: Uint8Array;
  extents: LayerExtent[];
}

/**
 * Paints `shapes` in order (later ones on top) over the background of `bg`, antialiased by `ss`x`ss` supersampling.
 * Background, fills and noise are those of `renderShape`, which is this with one shape.
 */
export function renderLayers(bg: SceneBackground, shapes: readonly ShapeParams[], noiseSeed: number, ss: number): RenderedLayers {
  if (!Number.isInteger(ss) || ss < 1 || ss > 16) {
    throw new InvalidSpecError('supersample', ss, 'an integer from 1 to 16 (samples per pixel along each axis)');
  }
  if (shapes.length > 254) throw new InvalidSpecError('shapes', shapes.length, 'at most 254 shapes in one image');
  const { size } = bg;
  const out = new Uint8Array(size * size * 3);
  const instances = new Uint8Array(size * size);
  const extents: LayerExtent[] = shapes.map(() => ({ box: [Infinity, Infinity, -Infinity, -Infinity], area: 0 }));

  // Smooth colour noise: a coarse grid of random offsets, bilinearly interpolated.
  const noiseRand = seededRandom(noiseSeed ^ 0x5f3759df);
  const g = bg.bgGrid;
  const grid = new Float32Array((g + 1) * (g + 1) * 3);
  for (let i = 0; i < grid.length; i++) grid[i] = (noiseRand() * 2 - 1) * bg.bgNoise;
  const gradX = Math.cos(bg.bgAngle);
  const gradY = Math.sin(bg.bgAngle);
  const half = size / 2;
  const gradSpan = (Math.abs(gradX) + Math.abs(gradY)) * half;

  const frames = shapes.map((p) => ({
    cos: Math.cos(p.rotation),
    sin: Math.sin(p.rotation),
    sCos: Math.cos(p.stripeAngle),
    sSin: Math.sin(p.stripeAngle),
    reach: p.radius + 1,
  }));
  const normal = seededNormal(noiseSeed);
  const inv = 1 / (ss * ss);
  const px = [0, 0, 0];

  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const xc = x + 0.5;
      const yc = y + 0.5;
      // Background colour at the pixel centre.
      const t = gradSpan > 0 ? ((xc - half) * gradX + (yc - half) * gradY) / gradSpan / 2 + 0.5 : 0.5;
      const gx = (xc / size) * g;
      const gy = (yc / size) * g;
      const x0 = Math.min(Math.floor(gx), g - 1);
      const y0 = Math.min(Math.floor(gy), g - 1);
      const fx = gx - x0;
      const fy = gy - y0;
      for (let c = 0; c < 3; c++) {
        const n00 = grid[(y0 * (g + 1) + x0) * 3 + c]!;
        const n01 = grid[(y0 * (g + 1) + x0 + 1) * 3 + c]!;
        const n10 = grid[((y0 + 1) * (g + 1) + x0) * 3 + c]!;
        const n11 = grid[((y0 + 1) * (g + 1) + x0 + 1) * 3 + c]!;
        const n = (n00 * (1 - fx) + n01 * fx) * (1 - fy) + (n10 * (1 - fx) + n11 * fx) * fy;
        px[c] = bg.bg0[c]! * (1 - t) + bg.bg1[c]! * t + n;
      }

      // Each shape's coverage and mean fill colour over the sub-samples (only near the shape), composited in order.
      for (let k = 0; k < shapes.length; k++) {
        const p = shapes[k]!;
        const f = frames[k]!;
        if (Math.abs(xc - p.cx) > f.reach || Math.abs(yc - p.cy) > f.reach) continue;
        const ext = extents[k]!;
        let covered = 0;
        let sr = 0;
        let sg = 0;
        let sb = 0;
        for (let j = 0; j < ss; j++) {
          const sy = y + (j + 0.5) / ss;
          const dy = sy - p.cy;
          for (let i = 0; i < ss; i++) {
            const sx = x + (i + 0.5) / ss;
            const dx = sx - p.cx;
            // Into the shape's frame: undo the rotation, scale the circumradius to 1.
            const lu = dx * f.cos + dy * f.sin;
            const lv = -dx * f.sin + dy * f.cos;
            if (!insideShape(p.className, p.detail, lu / p.radius, lv / p.radius)) continue;
            covered++;
            if (sx < ext.box[0]) ext.box[0] = sx;
            if (sy < ext.box[1]) ext.box[1] = sy;
            if (sx > ext.box[2]) ext.box[2] = sx;
            if (sy > ext.box[3]) ext.box[3] = sy;
            let second = false;
            if (p.fill === 'stripes') {
              const s = (dx * f.sCos + dy * f.sSin) / p.period;
              second = s - Math.floor(s) >= 0.5;
            } else if (p.fill === 'dots') {
              const du = lu / p.period - Math.round(lu / p.period);
              const dv = lv / p.period - Math.round(lv / p.period);
              second = du * du + dv * dv <= 0.09;
            }
            const col = second ? p.color2 : p.color;
            sr += col[0];
            sg += col[1];
            sb += col[2];
          }
        }
        if (covered === 0) continue;
        const cov = covered * inv;
        ext.area += cov;
        px[0] = px[0]! * (1 - cov) + sr * inv;
        px[1] = px[1]! * (1 - cov) + sg * inv;
        px[2] = px[2]! * (1 - cov) + sb * inv;
        if (cov >= 0.5) instances[y * size + x] = k + 1;
      }
      const o = (y * size + x) * 3;
      out[o] = clampByte(px[0]! + normal() * bg.pixelNoise);
      out[o + 1] = clampByte(px[1]! + normal() * bg.pixelNoise);
      out[o + 2] = clampByte(px[2]! + normal() * bg.pixelNoise);
    }
  }
  // Sub-sample centres sit half a step inside the covered area; widen each box to the sub-sample cells' edges.
  const pad = 0.5 / ss;
  for (const e of extents) {
    if (e.area > 0) e.box = [e.box[0] - pad, e.box[1] - pad, e.box[2] + pad, e.box[3] + pad];
    else e.box = [0, 0, -1, -1];
  }
  return { data: out, instances, extents };
}

/** Image `index` of the synthetic stream `seed`: RGB uint8 HWC, label = index mod the number of classes. */
export function generateShape(seed: number, index: number, options: ShapeOptions = {}): ShapeImage {
  const params = shapeParams(seed, index, options.size === undefined ? {} : { size: options.size });
  const data = renderShape(params, deriveSeed(seed, index, 1), options.supersample === undefined ? {} : { supersample: options.supersample });
  return { data, width: params.size, height: params.size, label: params.label, className: params.className };
}

export interface ShapeDatasetOptions {
  /** Images per class. */
  perClass: number;
  /** Image side in pixels (default 64). */
  size?: number;
  /** Stream seed (default 0). */
  seed?: number;
  /** File format (default png; jpeg adds compression artefacts, quality 95). */
  format?: 'png' | 'jpeg';
}

export interface ShapeDataset {
  root: string;
  classes: ShapeClass[];
  /** Every file written, class by class, in order. */
  files: { path: string; label: number }[];
}

/**
 * Writes an ImageFolder tree `dir/<class>/<n>.png` with `perClass` images per class (n zero-padded so names
 * sort in order). Image n of class c is `generateShape(seed, n * classes + c)`, so a larger dataset extends a
 * smaller one with the same seed. Each file is written to a temporary name and renamed, so an interrupted run
 * leaves whole files only; existing files of the same name are replaced.
 */
export async function generateShapeDataset(dir: string, options: ShapeDatasetOptions): Promise<ShapeDataset> {
  const { perClass } = options;
  const size = options.size ?? DEFAULT_SIZE;
  const seed = options.seed ?? 0;
  const format = options.format ?? 'png';
  if (!Number.isInteger(perClass) || perClass < 1) {
    throw new InvalidSpecError('perClass', perClass, 'a positive integer number of images per class');
  }
  checkSize(size);
  if (format !== 'png' && format !== 'jpeg') {
    throw new InvalidSpecError('format', format, "'png' or 'jpeg'");
  }
  const sharp = await loadSharp();
  const k = SHAPE_CLASSES.length;
  const digits = String(perClass - 1).length;
  const ext = format === 'png' ? 'png' : 'jpg';
  const jobs: { path: string; label: number; index: number }[] = [];
  for (let label = 0; label < k; label++) {
    for (let n = 0; n < perClass; n++) {
      jobs.push({ path: join(dir, SHAPE_CLASSES[label]!, `${String(n).padStart(digits, '0')}.${ext}`), label, index: n * k + label });
    }
  }
  const encode = async (job: (typeof jobs)[number]): Promise<void> => {
    const img = generateShape(seed, job.index, { size });
    const pipeline = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
      raw: { width: img.width, height: img.height, channels: 3 },
    });
    const bytes = await (format === 'png' ? pipeline.png() : pipeline.jpeg({ quality: 95 })).toBuffer();
    await writeFileAtomic(job.path, bytes, { mkdir: true, sync: false });
  };
  // A few encodes in flight keep sharp's thread pool busy while the next images are drawn.
  const inFlight = 4;
  await forEachConcurrent(jobs.length, inFlight, (i) => encode(jobs[i]!));
  return { root: dir, classes: [...SHAPE_CLASSES], files: jobs.map(({ path, label }) => ({ path, label })) };
}
