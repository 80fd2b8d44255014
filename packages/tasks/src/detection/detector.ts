/**
 * Images in, boxes out: `Detector.load(model)` then `detector.detect(images)`. The model resolves as every model does
 * (models/resolve.ts): a detector architecture (random weights, flagged), a detector weight file or a zoo entry
 * (tf_efficientdet_d0.coco). Each image is letterboxed and normalised as effdet's evaluation does (letterbox.ts), a
 * batch runs on the backend, and effdet's post-processing (postprocess.ts: top-5000, decoding, class-aware NMS or
 * soft-NMS, at most 100) gives boxes in original-image pixels.
 */
import { boxOutputName, classOutputName, type Device, type Graph, InvalidSpecError, readDetectionMetadata, type Runner, type Tensor } from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';
import { decodeImage, type ImageSource, type RgbImage, sourceName } from '../images/decode.js';
import { ImageDecodeError } from '../images/errors.js';
import type { BatchError } from '../images/preprocess.js';
import { labelsFor } from '../labels/label-sets.js';
import { loadModelWeights, type ModelWeights, type ResolveOptions, resolveModel } from '../models/resolve.js';
import { loadRunner } from '../models/runner.js';
import { type Anchors, detectorAnchors } from './anchors.js';
import { imageInfoFor } from './augment-boxes.js';
import { letterbox } from './letterbox.js';
import { type ImageInfo, postprocessDetections } from './postprocess.js';

export interface DetectorOptions extends ResolveOptions {
  backend?: 'onnx' | 'tfjs';
  device?: Device;
  threads?: number;
  /** A weight file for a detector architecture (effdet's names), as --weights. */
  weights?: string;
  weightsFormat?: string;
  /** For a .pth training checkpoint: the entry that holds the weights. */
  weightsKey?: string;
  /** The network's input size (a side or [height, width]; default the detector's own, e.g. 512 for D0). */
  inputSize?: number | [number, number];
  /**
   * Class names by class id - 1: a label set name ('coco-90') or a list. Default: the zoo entry's label set, COCO's
   * 90 ids for a 90-class effdet weight file, else "class <id>".
   */
  labels?: string | readonly string[];
}

/** A decoded image (8-bit RGB, HWC) with an optional name. */
export type NamedImage = RgbImage & { name?: string };

/**
 * What detect() takes, one image per element: a path, the file's bytes, `{ source, name }`, a decoded image, or a
 * float32 tensor [3, H, W] (or [1, 3, H, W]) already letterboxed and normalised at the network's input size (its
 * detections are in its own pixels).
 */
export type DetectInput = ImageSource | NamedImage | Tensor;

export interface DetectOptions {
  /** Keep detections scoring at least this (default 0.4; 0 keeps all of effdet's up to maxDetections). */
  score?: number;
  /** At most this many per image, best first (default 100, effdet's max_det_per_image). */
  maxDetections?: number;
  /** 'hard': class-aware NMS at IoU 0.5 (default); 'soft': effdet's Gaussian soft-NMS. */
  nms?: 'hard' | 'soft';
  /** IoU above which hard NMS drops a box (default 0.5). */
  iouThreshold?: number;
  /** Images per run of the network (default 8). */
  batchSize?: number;
  /** Report images that cannot be decoded in `errors` and detect the rest (default false: the first one throws). */
  skipErrors?: boolean;
}

export interface Detection {
  /** Class name (see DetectorOptions.labels). */
  label: string;
  /** 1-based class id as effdet numbers them (a COCO category id for COCO models). */
  classId: number;
  score: number;
  /** [x1, y1, x2, y2] in the original image's pixels. */
  box: [number, number, number, number];
}

export interface ImageDetections {
  /** The image's name (its path, the name given, or `<input i>`). */
  name: string;
  /** Position in the input list. */
  index: number;
  width: number;
  height: number;
  /** Best first. */
  detections: Detection[];
}

export interface DetectResult {
  results: ImageDetections[];
  /** Images that could not be decoded (with skipErrors). */
  errors: BatchError[];
}

/** One image ready for the network. */
interface Prepared {
  index: number;
  name: string;
  width: number;
  height: number;
  data: Float32Array;
  info: ImageInfo;
}

const isTensor = (x: unknown): x is Tensor => typeof x === 'object' && x !== null && 'dtype' in x && 'shape' in x && 'data' in x;
const isDecoded = (x: unknown): x is NamedImage => typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && 'data' in x && 'width' in x && 'height' in x && !isTensor(x);

/** An EfficientDet on a backend, with its preprocessing, anchors and class names. */
export class Detector {
  private readonly anchorCache = new Map<string, Anchors>();

  constructor(
    readonly runner: Runner,
    readonly model: ModelWeights,
    /** Class names by class id - 1 (empty: "class <id>"). */
    readonly labels: readonly string[],
    private readonly release: () => Promise<void> | void = () => runner.dispose(),
  ) {
    readDetectionMetadata(model.graph);
  }

  /** A detector architecture (random weights), a detector weight file or a zoo entry; see DetectorOptions. */
  static async load(name: string, o: DetectorOptions = {}): Promise<Detector> {
    const notDetector = () => new InvalidSpecError('model', name, 'a detector: an EfficientDet architecture (tf_efficientdet_d0), its weight file or a detection zoo entry (tf_efficientdet_d0.coco); this is a classifier (use effnet classify / Classifier.load)');
    // Known classifiers stop here, before any weights are pulled or read.
    const ref = await resolveModel(name, o);
    if (ref.kind === 'variant' || (ref.kind === 'pretrained' && ref.entry.task !== 'detection')) throw notDetector();
    const m = await loadModelWeights(name, { ...o, inputResolution: o.inputSize });
    if (!m.detector) throw notDetector();
    return Detector.fromModel(m, o);
  }

  /** A detector on a model already loaded (loadModelWeights, a detector), without reading it again. */
  static async fromModel(m: ModelWeights, o: DetectorOptions = {}): Promise<Detector> {
    if (!m.detector) throw new InvalidSpecError('model', m.ref.name, 'a detector: an EfficientDet architecture, its weight file or a detection zoo entry');
    if (m.graph.inputs[0]!.height === null) throw new InvalidSpecError('inputSize', o.inputSize, 'a fixed size: the letterbox needs one');
    const runner = await loadRunner(m, { backend: o.backend, device: o.device ?? 'cpu', ...(o.threads ? { threads: o.threads } : {}) });
    const labels = detectorLabels(m, o.labels);
    if (o.labels === undefined && m.labels === undefined && !m.classes && labels.length) m.notes.push("class names: COCO's 90 category ids (a 90-class effdet weight file)");
    return new Detector(runner, m, labels);
  }

  /** true when the weights are a random initialisation (an architecture without weights): boxes mean nothing. */
  get random(): boolean {
    return this.model.random;
  }

  get device(): string {
    return this.runner.device;
  }

  get preprocessing(): Preprocessing {
    return this.model.preprocessing;
  }

  /** The network's input size [height, width]. */
  get inputSize(): [number, number] {
    const i = this.model.graph.inputs[0]!;
    return [i.height as number, i.width as number];
  }

  get numClasses(): number {
    return readDetectionMetadata(this.model.graph).numClasses;
  }

  /** The name a class id (1-based) is reported under. */
  labelOf(classId: number): string {
    return this.labels[classId - 1] ?? `class ${classId}`;
  }

  /** The anchors of an input size, generated once. */
  anchors(size: readonly [number, number] = this.inputSize): Anchors {
    const key = size.join('x');
    let a = this.anchorCache.get(key);
    if (!a) {
      a = detectorAnchors(this.model.graph, size);
      this.anchorCache.set(key, a);
    }
    return a;
  }

  /** The raw head outputs for a preprocessed NCHW batch, split into class and box outputs per level (P3 first). */
  async headOutputs(batch: Tensor): Promise<{ classes: Tensor[]; boxes: Tensor[] }> {
    return splitHeadOutputs(this.model.graph, await this.runner.run(batch));
  }

  /** Detections for each image (see DetectInput and DetectOptions). With skipErrors, unreadable images are reported and the rest detected. */
  async detect(images: readonly DetectInput[], o: DetectOptions = {}): Promise<DetectResult> {
    const { score = 0.4, maxDetections = 100, nms = 'hard', iouThreshold = 0.5, batchSize = 8 } = o;
    if (!(typeof score === 'number' && score >= 0 && score <= 1)) throw new InvalidSpecError('score', score, 'a threshold in [0, 1]');
    if (!(Number.isInteger(maxDetections) && maxDetections >= 1)) throw new InvalidSpecError('maxDetections', maxDetections, 'a positive integer');
    if (nms !== 'hard' && nms !== 'soft') throw new InvalidSpecError('nms', nms, "'hard' or 'soft'");
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new InvalidSpecError('batchSize', batchSize, 'a positive integer');
    const [h, w] = this.inputSize;
    const results: ImageDetections[] = [];
    const errors: BatchError[] = [];
    for (let start = 0; start < images.length; start += batchSize) {
      const settled = await Promise.all(images.slice(start, start + batchSize).map((x, i) => this.prepare(x, start + i)));
      const ready: Prepared[] = [];
      for (const r of settled) {
        if (!(r instanceof ImageDecodeError)) ready.push(r);
        else if (o.skipErrors) errors.push({ index: start + settled.indexOf(r), name: r.file, error: r });
        // Every image of the chunk was read, so this is the first bad image in input order.
        else throw r;
      }
      if (!ready.length) continue;
      const data = new Float32Array(ready.length * 3 * h * w);
      ready.forEach((p, k) => data.set(p.data, k * 3 * h * w));
      const { classes, boxes } = await this.headOutputs({ dtype: 'float32', shape: [ready.length, 3, h, w], data });
      const dets = postprocessDetections(classes, boxes, {
        anchors: this.anchors([h, w]),
        numClasses: this.numClasses,
        maxDetectionsPerImage: maxDetections,
        iouThreshold,
        softNms: nms === 'soft',
        imageInfo: ready.map((p) => p.info),
      });
      ready.forEach((p, k) => {
        const d = dets[k]!;
        const detections: Detection[] = [];
        for (let i = 0; i < d.count && d.scores[i]! >= score; i++) {
          const b = d.boxes.subarray(i * 4, i * 4 + 4);
          detections.push({ label: this.labelOf(d.classes[i]!), classId: d.classes[i]!, score: d.scores[i]!, box: [b[0]!, b[1]!, b[2]!, b[3]!] });
        }
        results.push({ name: p.name, index: p.index, width: p.width, height: p.height, detections });
      });
    }
    return { results, errors };
  }

  /** Letterboxes a decoded image or checks a tensor; an image that cannot be decoded is returned as its error. */
  private async prepare(x: DetectInput, index: number): Promise<Prepared | ImageDecodeError> {
    const [h, w] = this.inputSize;
    if (isTensor(x)) {
      const s = x.shape;
      const ok = x.dtype === 'float32' && ((s.length === 3 && s[0] === 3 && s[1] === h && s[2] === w) || (s.length === 4 && s[0] === 1 && s[1] === 3 && s[2] === h && s[3] === w));
      if (!ok) throw new InvalidSpecError(`images[${index}]`, { dtype: x.dtype, shape: s }, `a float32 tensor [3, ${h}, ${w}] already letterboxed and normalised (or pass the image itself: a path, its bytes or decoded pixels)`);
      return { index, name: `<tensor ${index}>`, width: w, height: h, data: x.data as Float32Array, info: { imgScale: 1, imgSize: [w, h] } };
    }
    let image: RgbImage;
    let name: string;
    if (isDecoded(x)) {
      if (!(x.data instanceof Uint8Array) || x.data.length !== x.width * x.height * 3)
        throw new InvalidSpecError(`images[${index}]`, { width: x.width, height: x.height, bytes: x.data?.length }, 'decoded 8-bit RGB pixels: width * height * 3 bytes (HWC)');
      image = x;
      name = x.name ?? `<input ${index}>`;
    } else {
      name = sourceName(x, `<input ${index}>`);
      try {
        image = await decodeImage(typeof x === 'string' || x instanceof Uint8Array ? x : x.source, name);
      } catch (e) {
        if (e instanceof ImageDecodeError) return e;
        throw e;
      }
    }
    const { data, info } = letterbox(image, [h, w], this.preprocessing);
    return { index, name, width: image.width, height: image.height, data, info: imageInfoFor(info) };
  }

  async dispose(): Promise<void> {
    await this.release();
  }
}

/** A detector graph's outputs by name, as the per-level class and box lists post-processing takes (P3 first). */
export function splitHeadOutputs(graph: Graph, out: Record<string, Tensor>): { classes: Tensor[]; boxes: Tensor[] } {
  const m = readDetectionMetadata(graph);
  const levels = Array.from({ length: m.maxLevel - m.minLevel + 1 }, (_, i) => m.minLevel + i);
  return { classes: levels.map((l) => out[classOutputName(l)]!), boxes: levels.map((l) => out[boxOutputName(l)]!) };
}

/** Class names for a loaded detector (see DetectorOptions.labels); empty when none fit its class count. */
export function detectorLabels(m: ModelWeights, given: DetectorOptions['labels']): readonly string[] {
  const numClasses = readDetectionMetadata(m.graph).numClasses;
  if (given !== undefined) {
    const l = labelsFor(given);
    if (l.length !== numClasses) throw new InvalidSpecError('labels', typeof given === 'string' ? given : `${l.length} names`, `${numClasses} class names, one per class id of ${m.ref.name}`);
    return l;
  }
  if (m.classes?.length === numClasses) return m.classes;
  const set = m.labels ?? (!m.random && numClasses === 90 ? 'coco-90' : undefined);
  if (set === undefined) return [];
  try {
    const l = labelsFor(set);
    return l.length === numClasses ? l : [];
  } catch {
    return [];
  }
}
