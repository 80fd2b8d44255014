import {
  type Backend,
  bindDetectorWeights,
  bindWeights,
  buildEfficientDet,
  buildEfficientNet,
  buildSegmenter,
  classifierWidth,
  detectorClassCount,
  detectorConfig,
  type Device,
  type EfficientDetConfig,
  type EfficientNetSpec,
  float32Tensor,
  getBackend,
  type Graph,
  InvalidSpecError,
  normalizeValue,
  type Runner,
  type SegmenterConfig,
  segmenterConfig,
  specFor,
  type Tensor,
  type TensorMap,
  toFloat32,
  WeightMismatchError,
} from '@effnet/core';
import { readEntryWeights } from './convert/index.js';
import { pull, type PullOptions, type PullResult } from './pull.js';
import { Registry } from './registry/registry.js';
import type { Preprocessing, RegistryEntry } from './registry/schema.js';

/**
 * The spec a registry entry's weights were trained with: the arch, the family's conventions, the entry's overrides.
 * For a detection entry: its detector's backbone.
 */
export function specForEntry(entry: RegistryEntry): EfficientNetSpec {
  if (entry.task === 'detection') {
    const d = detectorConfig(entry.arch);
    return specFor(d.backbone, { dropPathRate: d.backboneDropPath });
  }
  if (entry.task === 'segmentation') return specFor(segmenterConfig(entry.arch).encoder);
  if (entry.family === 'effdet') throw new InvalidSpecError(`registry entry "${entry.name}" family`, entry.family, 'a classifier family (effdet is for detection entries)');
  const spec = specFor(entry.arch, { family: entry.family, resolution: entry.preprocessing.inputSize });
  return { ...spec, ...(entry.overrides?.padding ? { padding: entry.overrides.padding } : {}), ...(entry.overrides?.bnEps ? { bnEps: entry.overrides.bnEps } : {}) };
}

export interface PretrainedWeightsOptions extends PullOptions {
  /** Static input size, [h, w], or null for any size. Default: the entry's preprocessing.inputSize. */
  resolution?: number | [number, number] | null;
  /** For a .pth checkpoint: the entry that holds the weights, overriding the registry entry's weightsKey. */
  weightsKey?: string;
}

export interface PretrainedWeights {
  entry: RegistryEntry;
  spec: EfficientNetSpec;
  /** A detection entry's detector (its graph is that EfficientDet, with the weights' class count). */
  detector?: EfficientDetConfig;
  /** A segmentation entry's segmenter (its graph, with the weights' class count). */
  segmenter?: SegmenterConfig;
  graph: Graph;
  /** Bound to the graph: canonical names, float32, checked. */
  weights: TensorMap;
  pulled: PullResult;
  /** What the converter dropped or noticed. */
  notes: string[];
}

/**
 * Pulls (or finds in the cache) an entry's weights, converts them to canonical names and binds them to the graph of
 * its architecture (a detection entry: its EfficientDet, with the class count of the weights). A file that does not
 * fit is a WeightMismatchError naming every missing, unexpected and mis-shaped tensor.
 */
export async function loadPretrainedWeights(name: string, o: PretrainedWeightsOptions = {}): Promise<PretrainedWeights> {
  const env = o.env ?? process.env;
  const registry = o.registry instanceof Registry ? o.registry : await Registry.load({ ...o, registry: o.registry as string | string[] | undefined, env });
  const entry = registry.get(name);
  const pulled = await pull(entry.name, { ...o, registry, env });
  const spec = specForEntry(entry);
  const converted = await readEntryWeights(entry, pulled.path, spec, { weightsKey: o.weightsKey });
  if (entry.task === 'detection') {
    const detector = detectorConfig(entry.arch);
    const source = `${pulled.path} (entry "${entry.name}")`;
    const numClasses = entry.numClasses ?? detectorClassCount(converted.tensors, detector, source) ?? detector.numClasses;
    const graph = buildEfficientDet(detector, { numClasses, inputResolution: o.resolution === undefined ? detector.imageSize : o.resolution });
    return { entry, spec, detector, graph, weights: bindDetectorWeights(graph, converted.tensors, detector, source), pulled, notes: converted.notes };
  }
  if (entry.task === 'segmentation') {
    const segmenter = segmenterConfig(entry.arch);
    const numClasses = entry.numClasses ?? converted.tensors.get('segmentation_head.0.bias')?.shape[0] ?? 1;
    const graph = buildSegmenter(segmenter, { numClasses, inputResolution: o.resolution === undefined ? entry.preprocessing.inputSize : o.resolution });
    return { entry, spec, segmenter, graph, weights: bindWeights(graph, converted.tensors), pulled, notes: converted.notes };
  }
  const numClasses = entry.numClasses ?? classifierWidth(converted.tensors) ?? 1000;
  const graph = buildEfficientNet(spec, { numClasses, inputResolution: o.resolution === undefined ? entry.preprocessing.inputSize : o.resolution });
  let weights: TensorMap;
  try {
    weights = bindWeights(graph, converted.tensors);
  } catch (e) {
    if (!(e instanceof WeightMismatchError)) throw e;
    throw new WeightMismatchError(
      e.missing,
      e.unexpected,
      e.misshaped,
      [
        /hint: .*/.exec(e.message)?.[0],
        `the file: ${pulled.path} (entry "${entry.name}": arch ${entry.arch}, family ${entry.family}, naming ${entry.naming}, ${numClasses} classes); check the entry's arch, family and naming`,
      ]
        .filter(Boolean)
        .join('\n  '),
    );
  }
  return { entry, spec, graph, weights, pulled, notes: converted.notes };
}

export interface LoadPretrainedOptions extends PretrainedWeightsOptions {
  /** A backend name ('onnx', 'tfjs') or a Backend object. Default 'onnx'. */
  backend?: string | Backend;
  device?: Device;
  threads?: number;
}

/** A ready model: its runner, the preprocessing its weights expect, and what it is. */
export interface PretrainedModel {
  name: string;
  entry: RegistryEntry;
  spec: EfficientNetSpec;
  graph: Graph;
  preprocessing: Preprocessing;
  /** Label set of the classifier (e.g. imagenet-1k) and its width. */
  labels: string;
  numClasses: number;
  /** The cached weight file. */
  path: string;
  runner: Runner;
  notes: string[];
  /** Logits [N, numClasses] for a float32 NCHW batch already normalized (see `normalize`). */
  run(input: Tensor): Promise<Tensor>;
  /** (x - mean) / std per channel, for a float32 NCHW batch of pixels scaled to [0, 1]. */
  normalize(pixels: Tensor): Tensor;
  dispose(): Promise<void>;
}

/** (x - mean) / std per channel of an NCHW float32 batch in [0, 1]. */
export function normalize(pixels: Tensor, p: Pick<Preprocessing, 'mean' | 'std'>): Tensor {
  if (pixels.shape.length !== 4 || pixels.shape[1] !== 3) throw new InvalidSpecError('pixels', pixels.shape, 'an NCHW batch with 3 channels [N, 3, H, W]');
  const src = toFloat32(pixels);
  const out = new Float32Array(src.length);
  const [n, , h, w] = pixels.shape as [number, number, number, number];
  const plane = h * w;
  for (let b = 0; b < n; b++)
    for (let c = 0; c < 3; c++) {
      const off = (b * 3 + c) * plane;
      for (let i = 0; i < plane; i++) out[off + i] = normalizeValue(src[off + i]!, p.mean[c]!, p.std[c]!);
    }
  return float32Tensor([...pixels.shape], out);
}

/**
 * Pulls `name` if needed, converts and binds its weights, and loads them on a backend: a ready model with its
 * preprocessing attached. `await loadPretrained('efficientnet_b0.ra_in1k', { backend: 'onnx', device: 'cpu' })`.
 */
export async function loadPretrained(name: string, o: LoadPretrainedOptions = {}): Promise<PretrainedModel> {
  const registry = o.registry instanceof Registry ? o.registry : await Registry.load({ ...o, registry: o.registry as string | string[] | undefined, env: o.env ?? process.env });
  if (registry.get(name).task === 'detection') throw new InvalidSpecError('model', name, 'a classifier: this zoo entry is a detector (use Detector.load from @effnet/tasks, or effnet detect)');
  if (registry.get(name).task === 'segmentation') throw new InvalidSpecError('model', name, 'a classifier: this zoo entry is a segmenter (use Segmenter.load from @effnet/tasks, or effnet segment)');
  const w = await loadPretrainedWeights(name, { ...o, registry });
  const backend = typeof o.backend === 'object' ? o.backend : await getBackend(o.backend ?? 'onnx');
  const runner = await backend.load(w.graph, w.weights, { device: o.device ?? 'cpu', ...(o.threads ? { threads: o.threads } : {}) });
  const output = w.graph.outputs[0]!;
  const numClasses = classifierWidth(w.weights) ?? 0;
  return {
    name: w.entry.name,
    entry: w.entry,
    spec: w.spec,
    graph: w.graph,
    preprocessing: w.entry.preprocessing,
    labels: w.entry.labels,
    numClasses,
    path: w.pulled.path,
    runner,
    notes: w.notes,
    async run(input) {
      return (await runner.run(input))[output]!;
    },
    normalize: (pixels) => normalize(pixels, w.entry.preprocessing),
    async dispose() {
      await runner.dispose();
    },
  };
}
