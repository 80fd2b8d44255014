/**
 * Segmentation inference: images resized to the model's input (the whole image, squashed), the logits resized back
 * to each image's own size (bilinear) and the class of each pixel by argmax (one-class models: sigmoid > 0.5).
 */
import { type Device, float32Tensor, InvalidSpecError, readSegmentationMetadata, type Runner, SEGMENTATION_OUTPUT, type Tensor } from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';
import { decodeImage, type ImageSource, type RgbImage, sourceName } from '../images/decode.js';
import { writeNormalized } from '../images/preprocess.js';
import { LABEL_SETS } from '../labels/label-sets.js';
import { loadModelWeights, type ModelWeights, type ResolveOptions, resolveModel, sizeErrorAs } from '../models/resolve.js';
import { loadRunner } from '../models/runner.js';
import { resizePair } from './augment.js';
import type { IndexMask } from './index-png.js';

/** Resizes one image's logits [C, h, w] (at `offset` in a batch) to outW x outH (bilinear, half-pixel) and takes the argmax. */
export function logitsToMask(logits: Float32Array, offset: number, classes: number, h: number, w: number, outW: number, outH: number): Uint8Array {
  const mask = new Uint8Array(outW * outH);
  const best = new Float32Array(outW * outH).fill(-Infinity);
  const plane = h * w;
  const xs = Array.from({ length: outW }, (_, x) => {
    const f = Math.min(Math.max(((x + 0.5) * w) / outW - 0.5, 0), w - 1);
    const x0 = Math.floor(f);
    return [x0, Math.min(x0 + 1, w - 1), f - x0] as const;
  });
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max(((y + 0.5) * h) / outH - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const ay = fy - y0;
    for (let c = 0; c < classes; c++) {
      const base = offset + c * plane;
      for (let x = 0; x < outW; x++) {
        const [x0, x1, ax] = xs[x]!;
        const v =
          (logits[base + y0 * w + x0]! * (1 - ax) + logits[base + y0 * w + x1]! * ax) * (1 - ay) + (logits[base + y1 * w + x0]! * (1 - ax) + logits[base + y1 * w + x1]! * ax) * ay;
        const o = y * outW + x;
        if (classes === 1) mask[o] = v > 0 ? 1 : 0;
        else if (v > best[o]!) {
          best[o] = v;
          mask[o] = c;
        }
      }
    }
  }
  return mask;
}

/** Runs a segmentation graph's `run` over images in batches; masks at each image's own size. */
export async function predictMasks(
  run: (x: Tensor) => Promise<Record<string, Tensor>>,
  images: readonly RgbImage[],
  o: { preprocessing: Pick<Preprocessing, 'mean' | 'std'>; size: number; batchSize: number },
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const plane = 3 * o.size * o.size;
  for (let s = 0; s < images.length; s += o.batchSize) {
    const chunk = images.slice(s, s + o.batchSize);
    const x = float32Tensor([chunk.length, 3, o.size, o.size]);
    chunk.forEach((image, k) => {
      const dummy: IndexMask = { data: new Uint8Array(image.width * image.height), width: image.width, height: image.height };
      writeNormalized(resizePair(image, dummy, o.size).image, o.preprocessing, x.data as Float32Array, k * plane);
    });
    const logits = (await run(x))[SEGMENTATION_OUTPUT];
    if (!logits) throw new InvalidSpecError('model outputs', Object.keys(await run(x)), `"${SEGMENTATION_OUTPUT}" (a segmentation model)`);
    const [, classes, h, w] = logits.shape as [number, number, number, number];
    chunk.forEach((image, k) => out.push(logitsToMask(logits.data as Float32Array, k * classes * h * w, classes, h, w, image.width, image.height)));
  }
  return out;
}

export interface SegmenterOptions extends ResolveOptions {
  backend?: 'onnx' | 'tfjs';
  device?: Device;
  threads?: number;
  /** A weight file for a segmenter architecture (smp's names), as --weights. */
  weights?: string;
  weightsFormat?: string;
  /** A segmenter architecture without weights: the head's classes. */
  numClasses?: number;
  /** The network's input side (a multiple of 32; of 128 for bifpnseg); default the model's own (a checkpoint's trained size, else 512). */
  inputSize?: number;
  /** Images per run (default 4). */
  batchSize?: number;
}

export interface Segmentation {
  name: string;
  width: number;
  height: number;
  /** One class index per pixel, at the image's own size. */
  mask: Uint8Array;
  /** Fraction of the image each class covers, by class name (classes that occur). */
  areas: Record<string, number>;
}

/** Class names of a loaded segmenter in index order: a checkpoint's own, the entry's label set, else class0..classN-1. */
export function segmenterClasses(m: ModelWeights): string[] {
  const meta = readSegmentationMetadata(m.graph);
  const named = m.labels !== undefined ? LABEL_SETS[m.labels] : undefined;
  return m.classes ?? (named?.length === meta.numClasses ? [...named] : undefined) ?? (meta.numClasses === 1 ? ['background', 'foreground'] : Array.from({ length: meta.numClasses }, (_, i) => `class${i}`));
}

/** The fraction of a mask each class covers, by class name (classes that occur, in index order). */
export function maskAreas(mask: Uint8Array, classes: readonly string[]): Record<string, number> {
  const counts = new Map<number, number>();
  for (const v of mask) counts.set(v, (counts.get(v) ?? 0) + 1);
  return Object.fromEntries([...counts].sort((a, b) => a[0] - b[0]).map(([c, n]) => [classes[c] ?? `class${c}`, n / mask.length]));
}

/** A loaded segmentation model: `Segmenter.load(model)`, then `segment(images)`. */
export class Segmenter {
  private constructor(
    private readonly runner: Runner,
    readonly model: ModelWeights,
    /** Class names in index order. */
    readonly classes: string[],
    readonly size: number,
    private readonly batchSize: number,
  ) {}

  /** A segmenter checkpoint, a segmentation zoo entry (effnet-shapes-seg) or a segmenter architecture (unet_efficientnet_b0). */
  static async load(name: string, o: SegmenterOptions = {}): Promise<Segmenter> {
    const notSegmenter = (what: string) =>
      new InvalidSpecError('model', name, `a segmenter: a checkpoint of effnet train --task segmentation, a segmentation zoo entry (effnet-shapes-seg) or an architecture such as unet_efficientnet_b0; this is ${what}`);
    const ref = await resolveModel(name, o);
    if (ref.kind === 'variant' || ref.kind === 'detector') throw notSegmenter(`a ${ref.kind === 'variant' ? 'classifier' : 'detector'}`);
    if (ref.kind === 'pretrained' && ref.entry.task !== 'segmentation') throw notSegmenter(`a ${ref.entry.task ?? 'classification'} zoo entry`);
    if (o.inputSize !== undefined && (!Number.isInteger(o.inputSize) || o.inputSize < 32 || o.inputSize % 32)) throw new InvalidSpecError('inputSize', o.inputSize, 'a positive multiple of 32');
    // bifpnseg needs a multiple of 2^maxLevel (128): sizeErrorAs says so of inputSize.
    const m = await loadModelWeights(name, { ...o, ...(o.inputSize !== undefined ? { inputResolution: o.inputSize } : {}) }).catch(sizeErrorAs('inputSize', o.inputSize));
    return Segmenter.fromModel(m, o);
  }

  /** A segmenter on a model already loaded (loadModelWeights), without reading it again. */
  static async fromModel(m: ModelWeights, o: SegmenterOptions = {}): Promise<Segmenter> {
    readSegmentationMetadata(m.graph); // a segmentation graph, or an error that says so
    const size = m.graph.inputs[0]!.height ?? o.inputSize ?? m.preprocessing.inputSize;
    // An exported .onnx runs as it is; anything else is compiled from its graph and weights.
    const runner = await loadRunner(m, { backend: o.backend ?? 'onnx', device: o.device ?? 'cpu', ...(o.threads ? { threads: o.threads } : {}) });
    return new Segmenter(runner, m, segmenterClasses(m), size, o.batchSize ?? 4);
  }

  /** true when the weights are a random initialisation (an architecture without weights): masks mean nothing. */
  get random(): boolean {
    return this.model.random;
  }

  get device(): string {
    return this.runner.device;
  }

  /** Index masks at each image's own size. */
  async segment(sources: ImageSource | readonly ImageSource[]): Promise<Segmentation[]> {
    const list = Array.isArray(sources) ? (sources as ImageSource[]) : [sources as ImageSource];
    const images = await Promise.all(list.map((s) => (typeof s === 'object' && 'source' in s ? decodeImage(s.source, s.name) : decodeImage(s))));
    return this.segmentImages(images.map((im, i) => ({ ...im, name: sourceName(list[i]!) })));
  }

  /** Index masks of decoded images. */
  async segmentImages(images: readonly (RgbImage & { name?: string })[]): Promise<Segmentation[]> {
    const masks = await predictMasks((x) => this.runner.run(x), images, { preprocessing: this.model.preprocessing, size: this.size, batchSize: this.batchSize });
    return masks.map((mask, i) => ({ name: images[i]!.name ?? `image ${i}`, width: images[i]!.width, height: images[i]!.height, mask, areas: maskAreas(mask, this.classes) }));
  }

  async dispose(): Promise<void> {
    await this.runner.dispose();
  }
}
