import { type Device, getBackend, inferShapes, InvalidSpecError, type Runner, type Tensor } from '@effnet/core';
import { loadPretrained, type Preprocessing, Registry } from '@effnet/zoo';
import type { ImageSource } from '../images/decode.js';
import { type BatchError, preprocessBatch, type ResizeMode } from '../images/preprocess.js';
import { labelsFor } from '../labels/label-sets.js';
import { softmax, type TopKEntry, topK } from '../labels/topk.js';
import { loadModelWeights, resolveModel } from '../models/resolve.js';
import { loadRunner } from '../models/runner.js';
import { loadCheckpoint } from './model-card.js';

export interface ClassifierOptions {
  backend?: 'onnx' | 'tfjs';
  device?: Device;
  threads?: number;
  /** For weights in a .pth training checkpoint: the entry that holds them (default: found automatically). */
  weightsKey?: string;
  /** With an architecture (efficientnet_b0): its weight file (.safetensors, .pth, .npz...), as `effnet run --weights`. */
  weights?: string;
  /** How that file names its tensors (torchvision, timm, keras...; default: recognised from the names). */
  weightsFormat?: string;
  /** Class names for an architecture's weight file, in index order (default ImageNet's for 1000 classes, else "class i"). */
  labels?: string | readonly string[];
}

export interface Classification {
  /** The image's name (its path, or the name given with its bytes). */
  name: string;
  /** Position in the input list. */
  index: number;
  top: TopKEntry[];
}

export interface ClassifyResult {
  results: Classification[];
  /** Images that could not be read (with skipErrors). */
  errors: BatchError[];
}

/** Images in, labels out: preprocessing, a backend runner, softmax and top-k. */
export class Classifier {
  constructor(
    readonly runner: Runner,
    readonly preprocessing: Preprocessing,
    readonly labels: readonly string[],
    /** Where the model came from (a zoo name or a checkpoint path). */
    readonly source: string,
    private readonly release: () => Promise<void> | void = () => runner.dispose(),
  ) {}

  /** A zoo name (pretrained, e.g. efficientnet_b0.ra_in1k or effnet-shapes), a checkpoint (directory, .json or .safetensors) or an exported .onnx file. */
  static async load(model: string, o: ClassifierOptions = {}): Promise<Classifier> {
    const ref = await resolveModel(model);
    if (ref.kind === 'checkpoint') return Classifier.fromCheckpoint(model, o);
    if (ref.kind === 'onnx') {
      const m = await loadModelWeights(model, { weightsKey: o.weightsKey });
      if ((m.card!.task ?? 'classification') !== 'classification')
        throw new InvalidSpecError('model', model, `a classifier: this ONNX file is a ${m.card!.task} model (use effnet ${m.card!.task === 'detection' ? 'detect' : 'segment'})`);
      const runner = await loadRunner(m, { backend: o.backend, device: o.device ?? 'cpu', threads: o.threads });
      return new Classifier(runner, m.preprocessing, m.classes!, model);
    }
    if (ref.kind === 'variant' && o.weights !== undefined) {
      const m = await loadModelWeights(model, { weights: o.weights, weightsFormat: o.weightsFormat, weightsKey: o.weightsKey });
      const runner = await loadRunner(m, { backend: o.backend, device: o.device ?? 'cpu', threads: o.threads });
      const numClasses = inferShapes(m.graph).get(m.graph.outputs[0]!)![1]!;
      const labels = o.labels === undefined ? labelsOrIndices(numClasses === 1000 ? 'imagenet-1k' : '', numClasses) : labelsFor(o.labels);
      if (labels.length !== numClasses) throw new InvalidSpecError('labels', `${labels.length} names`, `${numClasses} class names, one per output of ${o.weights}`);
      return new Classifier(runner, m.preprocessing, labels, model);
    }
    if (o.weights !== undefined) throw new InvalidSpecError('weights', o.weights, `nothing with --model ${model}: a weight file goes with an architecture (efficientnet_b0); a zoo entry or checkpoint brings its own weights`);
    if (ref.kind === 'variant') {
      const tag = (await Registry.load()).find(ref.row.name)?.name;
      throw new InvalidSpecError('model', model, `a model with trained weights: "${model}" is an architecture with random weights; use ${tag ? `a zoo entry such as ${tag}` : 'a zoo entry'} (effnet zoo list) or a checkpoint`);
    }
    if (ref.kind === 'detector' || ref.kind === 'segmenter' || (ref.entry.task ?? 'classification') !== 'classification') {
      const task = ref.kind === 'detector' ? 'detection' : ref.kind === 'segmenter' ? 'segmentation' : ref.entry.task;
      throw new InvalidSpecError('model', model, `a classifier: this is a ${task} model (use ${task === 'detection' ? 'effnet detect / Detector.load' : 'effnet segment / Segmenter.load'})`);
    }
    const m = await loadPretrained(ref.entry.name, { backend: o.backend ?? 'onnx', device: o.device, threads: o.threads, weightsKey: o.weightsKey });
    const labels = labelsOrIndices(m.labels, m.numClasses);
    return new Classifier(m.runner, m.preprocessing, labels, model, () => m.dispose());
  }

  static async fromCheckpoint(path: string, o: ClassifierOptions = {}): Promise<Classifier> {
    const ck = await loadCheckpoint(path, { weightsKey: o.weightsKey });
    if ((ck.card.task ?? 'classification') !== 'classification')
      throw new InvalidSpecError('model', path, `a classifier: this checkpoint is a ${ck.card.task} model (use effnet ${ck.card.task === 'detection' ? 'detect' : 'segment'})`);
    const backend = await getBackend(o.backend ?? 'onnx');
    const runner = await backend.load(ck.graph, ck.weights, { device: o.device ?? 'cpu', threads: o.threads });
    return new Classifier(runner, ck.card.preprocessing, ck.card.classes, path);
  }

  get device(): string {
    return this.runner.device;
  }

  /** Logits for a preprocessed NCHW batch. */
  async logits(batch: Tensor): Promise<Tensor> {
    const out = await this.runner.run(batch);
    return Object.values(out)[0]!;
  }

  /**
   * Top-k labels with softmax probabilities for each image. With skipErrors, unreadable images are reported and the
   * rest classified. Images go through in batches of `batchSize`; the next batch is decoded and resized while the
   * runtime runs the current one. `resize: 'fast'` resizes in libvips (see ResizeMode; default 'exact').
   * `batchSize` defaults to 2 on a CPU (B0 costs the same per image at batch 1 as at 8 there, and a large first batch
   * pays for its fresh activation memory: 40 photos took 2.2 s at batch 2, 3.0 s at 16) and 16 on a GPU.
   */
  async classify(images: readonly ImageSource[], o: { topK?: number; skipErrors?: boolean; batchSize?: number; resize?: ResizeMode } = {}): Promise<ClassifyResult> {
    const k = o.topK ?? 5;
    const batchSize = o.batchSize ?? (/^(cpu|wasm)$/.test(this.device) ? 2 : 16);
    const results: Classification[] = [];
    const errors: BatchError[] = [];
    // Two batch buffers, taken in turn: the next batch is written into one while the runtime reads the other, and
    // neither is fresh memory after the first two batches (page faults cost ~3 ms per MB on some VMs).
    const per = 3 * this.preprocessing.inputSize * this.preprocessing.inputSize;
    const buffers: Float32Array[] = [];
    const prepare = (start: number) => {
      const turn = (start / batchSize) % 2;
      const slice = images.slice(start, start + batchSize);
      buffers[turn] ??= new Float32Array(Math.min(batchSize, images.length) * per);
      const p = preprocessBatch(slice, this.preprocessing, { skipErrors: o.skipErrors, resize: o.resize, out: buffers[turn] });
      p.catch(() => undefined); // awaited below, in order; this only keeps a prefetched failure from counting as unhandled
      return p;
    };
    let next = images.length ? prepare(0) : undefined;
    for (let start = 0; start < images.length; start += batchSize) {
      const batch = await next!;
      next = start + batchSize < images.length ? prepare(start + batchSize) : undefined;
      for (const e of batch.errors) errors.push({ ...e, index: e.index + start });
      if (batch.names.length === 0) continue;
      const logits = await this.logits(batch.tensor);
      const probs = softmax(logits.data as Float32Array, this.labels.length);
      const tops = topK(probs, k, { labels: this.labels });
      tops.forEach((top, row) => results.push({ name: batch.names[row]!, index: batch.indices[row]! + start, top }));
    }
    return { results, errors };
  }

  async dispose(): Promise<void> {
    await this.release();
  }
}

/** Class names for a zoo entry's label set when effnet knows them and they fit the classifier, else class indices. */
export function labelsOrIndices(set: string, numClasses: number): readonly string[] {
  try {
    const l = labelsFor(set);
    if (l.length === numClasses) return l;
  } catch {
    // fall through to indices
  }
  return Array.from({ length: numClasses }, (_, i) => `class ${i}`);
}
