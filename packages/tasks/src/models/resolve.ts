/**
 * The one place a model name becomes a model. Every command and API that takes a model (`--model`, `Classifier.load`,
 * `Detector.load`, `fineTune`) resolves it here, in one order:
 *   1. an existing path: an effnet-exported .onnx file (self-describing: its card is in its metadata_props), or
 *      a checkpoint (a training output directory, its model.json, or a weight file with its card),
 *      or a detector's weight file in effdet's names (such as effdet's released .pth files), whose detector is found
 *      from its tensors;
 *   2. an architecture: a variant (efficientnet_b0, efficientnet_phi-3), a detector (tf_efficientdet_d0) or a
 *      segmenter (unet_efficientnet_b0, fpn_*, deeplabv3plus_*): random weights unless a weight file is given, as
 *      timm's create_model (smp's Unet(encoder_weights=None)) without pretrained;
 *   3. a zoo entry (efficientnet_b0.ra_in1k, effnet-shapes, tf_efficientdet_d0.coco): pulled, converted, pretrained.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  bindDetectorWeights,
  buildEfficientDet,
  buildSegmenter,
  buildEfficientNet,
  DETECTORS,
  detectorClassCount,
  detectorConfig,
  detectorsFitting,
  type EfficientDetConfig,
  isDetectorName,
  isDetectorStateDict,
  isSegmenterName,
  type SegmenterConfig,
  segmenterConfig,
  segmenterInputMultiple,
  classifierWidth,
  closestNames,
  type EfficientNetSpec,
  EffnetError,
  type Graph,
  InvalidSpecError,
  bindWeights,
  randomWeights,
  readWeightFile,
  type WeightFile,
  resolveVariant,
  specFor,
  type OnnxModelBytes,
  type TensorMap,
  toCanonicalNames,
  UnknownVariantError,
  VARIANTS,
  type VariantRow,
  WEIGHT_NAMINGS,
  type WeightNaming,
} from '@effnet/core';
import { defaultDetectorPreprocessing, defaultPreprocessing, loadPretrainedWeights, type Preprocessing, readKerasH5, Registry, type RegistryEntry, type RegistryOptions } from '@effnet/zoo';
import { loadCheckpoint, type ModelCard } from '../classification/model-card.js';
import { loadOnnxModel } from './onnx-model.js';

export type ModelRef =
  | { kind: 'checkpoint'; name: string; path: string }
  | { kind: 'onnx'; name: string; path: string }
  | { kind: 'variant'; name: string; row: VariantRow }
  | { kind: 'detector'; name: string; config: EfficientDetConfig }
  | { kind: 'segmenter'; name: string; config: SegmenterConfig }
  | { kind: 'pretrained'; name: string; entry: RegistryEntry };

/** A model name that is no path, variant or zoo entry. Lists the closest names of each kind. */
export class UnknownModelNameError extends EffnetError {
  override name = 'UnknownModelNameError';
  constructor(
    readonly model: string,
    readonly suggestions: readonly string[],
  ) {
    super(
      `"${model}" is not a checkpoint path, a variant or a zoo entry${suggestions.length ? ` (did you mean ${suggestions.map((s) => `"${s}"`).join(', ')}?)` : ''}; ` +
        'see "effnet variants" for architectures and "effnet zoo list" for pretrained models',
    );
  }
}

export interface ResolveOptions extends RegistryOptions {
  /** A loaded registry (else built-in + EFFNET_REGISTRY + `registry` files). */
  registryObject?: Registry;
}

async function isPath(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** What `name` refers to, in the documented order. */
export async function resolveModel(name: string, o: ResolveOptions = {}): Promise<ModelRef> {
  if (typeof name !== 'string' || !name.trim()) throw new InvalidSpecError('model', name, 'a checkpoint path, a variant or a zoo entry name');
  if (await isPath(name)) return /\.onnx$/i.test(name) ? { kind: 'onnx', name, path: name } : { kind: 'checkpoint', name, path: name };
  if (isDetectorName(name)) return { kind: 'detector', name, config: detectorConfig(name) };
  if (isSegmenterName(name)) return { kind: 'segmenter', name, config: segmenterConfig(name) };
  try {
    return { kind: 'variant', name, row: resolveVariant(name) };
  } catch (e) {
    if (!(e instanceof UnknownVariantError)) throw e;
  }
  const registry = o.registryObject ?? (await Registry.load(o));
  const entry = registry.find(name);
  if (entry) return { kind: 'pretrained', name, entry };
  const suggestions = closestNames(name, [...registry.entries().map((e) => e.name), ...VARIANTS.map((v) => v.name), ...DETECTORS.map((d) => d.name)], { max: 4, ratio: 1 / 4 });
  throw new UnknownModelNameError(name, suggestions);
}

export interface LoadWeightsOptions extends ResolveOptions {
  /** A weight file for a variant (not for checkpoints or zoo entries, which bring their own). */
  weights?: string;
  /** How the weight file names its tensors (default effnet's canonical names). */
  weightsFormat?: string;
  /** For a .pth training checkpoint: the entry that holds the weights (default: found automatically). */
  weightsKey?: string;
  /** Static input size, [h, w], or null for any size; default the model's own (a checkpoint's trained size). */
  inputResolution?: number | [number, number] | null;
  /** A segmenter architecture without weights: the head's classes (default 1, smp's); a weight file brings its own. */
  numClasses?: number;
}

/** A model ready to compile: its graph and weights under canonical names, and what is known about it. */
export interface ModelWeights {
  ref: ModelRef;
  /** The network's EfficientNet (a detector's backbone). */
  spec: EfficientNetSpec;
  /** Present when the model is an EfficientDet. */
  detector?: EfficientDetConfig;
  /** Present when the model is a segmenter. */
  segmenter?: SegmenterConfig;
  graph: Graph;
  weights: TensorMap;
  /** true when the weights are a random initialisation (a variant without a weight file). */
  random: boolean;
  preprocessing: Preprocessing;
  /** Class names where known (a checkpoint's), else undefined. */
  classes?: string[];
  /** Label set name (zoo entries: imagenet-1k, ...). */
  labels?: string;
  /** The file the weights came from. */
  weightsFile?: string;
  /** The checkpoint's card (an .onnx file's embedded card). */
  card?: ModelCard;
  /** An exported .onnx file: the compiled model itself (`weights` is then empty: they are inside it). Run it with loadRunner. */
  onnx?: OnnxModelBytes & { precision: string };
  /** What the loader noticed (a card found beside a weight file, a converter's notes). */
  notes: string[];
}

function checkWeightsFormat(format: string | undefined): WeightNaming {
  const naming = (format ?? 'effnet') as WeightNaming;
  if (!WEIGHT_NAMINGS.includes(naming)) throw new InvalidSpecError('--weights-format', format, `one of ${WEIGHT_NAMINGS.join(', ')}`);
  return naming;
}

/** safetensors and .pth (told apart by content), or Keras HDF5 (.h5). */
async function readAnyWeightFile(path: string, weightsKey?: string): Promise<{ tensors: TensorMap; description: string }> {
  if (/\.(h5|hdf5)$/i.test(path)) {
    const tensors = await readKerasH5(path);
    return { tensors, description: `Keras HDF5, ${tensors.size} tensors` };
  }
  return readWeightFile(path, { weightsKey });
}

/** The card beside a weight file (x.safetensors -> x.json), when there is one. */
async function cardBeside(weights: string): Promise<string | undefined> {
  const card = join(dirname(weights), `${basename(weights).replace(/\.[^.]+$/, '')}.json`);
  return (await isPath(card)) ? card : undefined;
}

async function fromCheckpoint(ref: ModelRef, path: string, o: LoadWeightsOptions, notes: string[]): Promise<ModelWeights> {
  const ck = await loadCheckpoint(path, { inputResolution: o.inputResolution, weightsKey: o.weightsKey });
  return {
    ref,
    spec: ck.card.spec,
    ...(ck.card.task === 'detection' ? { detector: { ...ck.card.detector!, numClasses: ck.card.classes.length } } : {}),
    ...(ck.card.task === 'segmentation' ? { segmenter: ck.card.segmenter! } : {}),
    graph: ck.graph,
    weights: ck.weights,
    random: false,
    preprocessing: ck.card.preprocessing,
    classes: ck.card.classes,
    weightsFile: ck.weightsFile,
    card: ck.card,
    notes,
  };
}

/** Resolves `name` and loads its graph and weights (not yet bound to a backend). */
export async function loadModelWeights(name: string, o: LoadWeightsOptions = {}): Promise<ModelWeights> {
  const ref = await resolveModel(name, o);
  const architecture = ref.kind === 'variant' || ref.kind === 'detector' || ref.kind === 'segmenter';
  if (!architecture && o.weights !== undefined)
    throw new InvalidSpecError('--weights', o.weights, `nothing: "${name}" is ${{ checkpoint: 'a checkpoint', onnx: 'an ONNX file', pretrained: 'a zoo entry' }[ref.kind]} and brings its own weights`);
  if (!architecture && o.weightsFormat !== undefined)
    throw new InvalidSpecError('--weights-format', o.weightsFormat, `nothing: it describes a --weights file, and "${name}" brings its own weights`);
  switch (ref.kind) {
    case 'checkpoint':
      return (await detectorWeightFile(ref, o)) ?? fromCheckpoint(ref, ref.path, o, []);
    case 'onnx': {
      if (o.weightsKey !== undefined) throw new InvalidSpecError('--weights-key', o.weightsKey, `nothing: "${name}" is an ONNX file`);
      const x = await loadOnnxModel(ref.path, { inputResolution: o.inputResolution });
      const c = x.card;
      return {
        ref,
        spec: c.spec,
        ...(c.task === 'detection' ? { detector: { ...c.detector!, numClasses: c.classes.length } } : {}),
        ...(c.task === 'segmentation' && c.segmenter ? { segmenter: c.segmenter } : {}),
        graph: x.graph,
        weights: new Map(),
        random: c.base === 'random',
        preprocessing: c.preprocessing,
        classes: c.classes,
        weightsFile: ref.path,
        card: c,
        onnx: { ...x.onnx, precision: x.precision },
        notes: [],
      };
    }
    case 'pretrained': {
      const w = await loadPretrainedWeights(ref.entry.name, { ...o, registry: o.registryObject ?? o.registry, resolution: o.inputResolution, weightsKey: o.weightsKey });
      return {
        ref,
        spec: w.spec,
        ...(w.detector ? { detector: w.detector } : {}),
        ...(w.segmenter ? { segmenter: w.segmenter } : {}),
        graph: w.graph,
        weights: w.weights,
        random: false,
        preprocessing: w.detector ? detectorInputSize(w.entry.preprocessing, w.graph) : w.segmenter ? segmenterPreprocessing(w.segmenter, w.graph) : w.entry.preprocessing,
        labels: w.entry.labels,
        weightsFile: w.pulled.path,
        notes: w.notes,
      };
    }
    case 'detector':
      return loadDetector(ref, o);
    case 'segmenter':
      return loadSegmenter(ref, o);
    case 'variant': {
      const naming = checkWeightsFormat(o.weightsFormat);
      if (o.weights !== undefined) {
        // Weights saved by `effnet train` carry a card: its size, classes and spec are the model's, not the variant's defaults.
        const card = naming === 'effnet' ? await cardBeside(o.weights) : undefined;
        if (card) {
          const w = await fromCheckpoint(ref, card, o, [`read ${card}, the model card beside the weights: its spec, classes and input size are used`]);
          if (resolveVariant(w.card!.arch).name !== ref.row.name)
            throw new InvalidSpecError('--model', name, `"${w.card!.arch}", the architecture ${card} was trained as (or pass the checkpoint itself as --model)`);
          return w;
        }
      }
      const spec = specFor(ref.row.name, naming === 'torchvision' || naming === 'keras' ? { family: naming } : {});
      const build = (numClasses?: number) => buildEfficientNet(spec, { inputResolution: o.inputResolution, ...(numClasses ? { numClasses } : {}) });
      const preprocessing = defaultPreprocessing(ref.row.name);
      if (o.weightsKey !== undefined && o.weights === undefined) throw new InvalidSpecError('--weights-key', o.weightsKey, 'given only with --weights <checkpoint.pth>');
      if (o.weights === undefined) {
        const graph = build();
        return { ref, spec, graph, weights: randomWeights(graph), random: true, preprocessing, notes: [] };
      }
      const file = await readAnyWeightFile(o.weights, o.weightsKey);
      const notes = [`read ${o.weights}: ${file.description}`];
      const weights = toCanonicalNames(naming, spec, file.tensors, notes);
      const graph = build(classifierWidth(weights));
      return { ref, spec, graph, weights, random: false, preprocessing, weightsFile: o.weights, notes };
    }
  }
}

/** A detector's preprocessing with the graph's input size (a detector runs at any size its anchors fit). */
function detectorInputSize(p: Preprocessing, graph: Graph): Preprocessing {
  const h = graph.inputs[0]?.height;
  return typeof h === 'number' ? { ...p, inputSize: h } : p;
}

/** Builds a detector for weights in effdet's (= canonical) names and binds them; the class count comes from the file. */
function detectorFromFile(ref: ModelRef, detector: EfficientDetConfig, file: WeightFile, path: string, naming: WeightNaming, o: LoadWeightsOptions, notes: string[]): ModelWeights {
  const spec = specFor(detector.backbone, { dropPathRate: detector.backboneDropPath });
  const graph = buildEfficientDet(detector, { inputResolution: o.inputResolution, numClasses: detectorClassCount(file.tensors, detector, path) });
  const weights = bindDetectorWeights(graph, toCanonicalNames(naming, spec, file.tensors), detector, path);
  const preprocessing = detectorInputSize(defaultDetectorPreprocessing(detector.name), graph);
  return { ref, spec, detector, graph, weights, random: false, preprocessing, weightsFile: path, notes: [`read ${path}: ${file.description}`, ...notes] };
}

/**
 * Which of the detectors a weight file fits it is: the only one, or where several fit (D6 and D7 differ only in image
 * size and anchor scale), the one the file's name starts with (effdet's releases: tf_efficientdet_d7_53-6d1d7a95.pth).
 */
export function detectorForFile(fits: readonly string[], path: string): string | undefined {
  if (fits.length === 1) return fits[0];
  const base = basename(path).toLowerCase();
  return fits.filter((n) => base.startsWith(n) && !/[a-z0-9]/.test(base.charAt(n.length))).sort((a, b) => b.length - a.length)[0];
}

/**
 * A weight file (no card) that holds an EfficientDet in effdet's names, e.g. one of effdet's released .pth files: the
 * detector is the named one its tensors fit exactly; where several do (D6 and D7 differ only in image size and anchor
 * scale), the one the file name starts with. undefined for anything else (a directory, a card, a classifier's file).
 */
async function detectorWeightFile(ref: Extract<ModelRef, { kind: 'checkpoint' }>, o: LoadWeightsOptions): Promise<ModelWeights | undefined> {
  const path = ref.path;
  if (path.endsWith('.json') || (await stat(path)).isDirectory()) return undefined;
  const file = await readWeightFile(path, { weightsKey: o.weightsKey });
  if (!isDetectorStateDict(file.tensors)) return undefined;
  const fits = detectorsFitting(file.tensors);
  const pick = detectorForFile(fits, path);
  if (!pick) {
    const which = fits.length ? `it fits ${fits.join(' and ')}` : 'it fits no named EfficientDet';
    throw new InvalidSpecError('--model', path, `a detector's weight file whose detector effnet can tell: ${which}; pass the detector and the file: --model <detector> --weights ${path}`);
  }
  const notes = fits.length > 1 ? [`the weights fit ${fits.join(' and ')}; ${pick} chosen by the file name`] : [`the weights are ${pick}'s`];
  return detectorFromFile(ref, detectorConfig(pick), file, path, 'effdet', o, notes);
}

/** An EfficientDet by name, with random weights or a weight file in effdet's (= canonical) names. */
async function loadDetector(ref: Extract<ModelRef, { kind: 'detector' }>, o: LoadWeightsOptions): Promise<ModelWeights> {
  const naming = o.weightsFormat ?? 'effnet';
  if (naming !== 'effnet' && naming !== 'effdet') throw new InvalidSpecError('--weights-format', naming, `effnet or effdet for a detector (${ref.name})`);
  const detector = ref.config;
  if (o.weightsKey !== undefined && o.weights === undefined) throw new InvalidSpecError('--weights-key', o.weightsKey, 'given only with --weights <checkpoint.pth>');
  if (o.weights === undefined) {
    const spec = specFor(detector.backbone, { dropPathRate: detector.backboneDropPath });
    const graph = buildEfficientDet(detector, { inputResolution: o.inputResolution });
    const preprocessing = detectorInputSize(defaultDetectorPreprocessing(detector.name), graph);
    return { ref, spec, detector, graph, weights: randomWeights(graph), random: true, preprocessing, notes: [] };
  }
  return detectorFromFile(ref, detector, await readWeightFile(o.weights, { weightsKey: o.weightsKey }), o.weights, naming, o, []);
}

/** The class count of a segmenter's state_dict: its head conv's outputs (smp's names; bifpnseg's transposed conv). */
const segmentationHeadBias = (config: SegmenterConfig) => (config.detector ? 'seg_head.head_transpose.bias' : 'segmentation_head.0.bias');

/**
 * A `.catch` for loadModelWeights: core's refusal of a size (`inputResolution`, e.g. bifpnseg's multiple of 128)
 * said of the option the caller took that size from; anything else rethrown as it is.
 */
export function sizeErrorAs(option: string, value: unknown): (e: unknown) => never {
  return (e) => {
    throw e instanceof InvalidSpecError && e.field === 'inputResolution' ? new InvalidSpecError(option, value, e.expected.replace(/, \[h, w\].*$/, '')) : e;
  };
}

/**
 * A segmentation model's preprocessing: the whole image resized to the input size, normalised as the features were
 * trained: the encoder's mean/std, or for bifpnseg the detector's (Lite detectors take 0.5/0.5). Without a static size:
 * 512, or a bifpnseg's detector's own image size rounded up to a multiple of 2^maxLevel (Lite0's 320 -> 384).
 */
export function segmenterPreprocessing(config: SegmenterConfig, graph: Graph): Preprocessing {
  const h = graph.inputs[0]?.height;
  const m = segmenterInputMultiple(config);
  const size = typeof h === 'number' ? h : config.detector ? Math.ceil(detectorConfig(config.detector).imageSize[0] / m) * m : 512;
  const base = defaultPreprocessing(config.encoder);
  const { mean, std } = config.detector ? defaultDetectorPreprocessing(config.detector) : base;
  return { ...base, mean, std, inputSize: size, cropMode: 'squash', cropPct: 1, interpolation: 'bilinear' };
}

/** A segmenter architecture: random (smp's init) with --num-classes, or a weight file in smp's (= canonical) names. */
async function loadSegmenter(ref: Extract<ModelRef, { kind: 'segmenter' }>, o: LoadWeightsOptions): Promise<ModelWeights> {
  const naming = checkWeightsFormat(o.weightsFormat);
  if (naming !== 'effnet' && naming !== 'smp') throw new InvalidSpecError('--weights-format', naming, `effnet or smp for a segmenter (${ref.name})`);
  if (o.weightsKey !== undefined && o.weights === undefined) throw new InvalidSpecError('--weights-key', o.weightsKey, 'given only with --weights <checkpoint.pth>');
  const config = ref.config;
  const spec = specFor(config.encoder);
  const build = (numClasses?: number) => buildSegmenter(config, { inputResolution: o.inputResolution, ...(numClasses ? { numClasses } : {}) });
  if (o.weights === undefined) {
    const graph = build(o.numClasses);
    return { ref, spec, segmenter: config, graph, weights: randomWeights(graph), random: true, preprocessing: segmenterPreprocessing(config, graph), notes: [] };
  }
  const file = await readAnyWeightFile(o.weights, o.weightsKey);
  const headBias = segmentationHeadBias(config);
  const classes = file.tensors.get(headBias)?.shape[0];
  if (o.numClasses !== undefined && classes !== undefined && classes !== o.numClasses)
    throw new InvalidSpecError('--num-classes', o.numClasses, `${classes}, the classes of ${o.weights} (${headBias} has ${classes}), or leave it out`);
  const graph = build(classes ?? o.numClasses);
  const weights = bindWeights(graph, toCanonicalNames(naming, spec, file.tensors));
  return { ref, spec, segmenter: config, graph, weights, random: false, preprocessing: segmenterPreprocessing(config, graph), weightsFile: o.weights, notes: [`read ${o.weights}: ${file.description}`] };
}
