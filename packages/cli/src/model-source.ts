import {
  bindWeights,
  buildEfficientDet,
  buildEfficientNet,
  detectorConfig,
  detectorsFitting,
  type EfficientDetConfig,
  type EfficientNetSpec,
  type Graph,
  InvalidSpecError,
  isDetectorName,
  randomWeights,
  readSafetensors,
  resolveVariant,
  specFor,
  type TensorMap,
  toCanonicalNames,
  UnknownVariantError,
  WEIGHT_NAMINGS,
  WeightMismatchError,
  type WeightNaming,
} from '@effnet/core';
import { loadPretrainedWeights, Registry } from '@effnet/zoo';

export interface ModelSource {
  variant: string;
  weights?: string;
  weightsFormat?: string;
  /** Static input size; null = dynamic. */
  inputResolution?: number | [number, number] | null;
}

export interface LoadedModel {
  /** The network's EfficientNet (a detector's backbone). */
  spec: EfficientNetSpec;
  /** Present when the model is an EfficientDet. */
  detector?: EfficientDetConfig;
  graph: Graph;
  weights: TensorMap;
  /** true when no weight file was given and the weights are a random initialisation. */
  random: boolean;
  /** The weight file the weights came from (a --weights file, or a pretrained entry's cached file). */
  weightsFile?: string;
  /** The pretrained entry, when the model was named by one (efficientnet_b0.ra_in1k). */
  pretrained?: string;
}

/** The classifier width a state_dict was trained for, whatever its naming. */
function classesIn(tensors: TensorMap): number | undefined {
  for (const name of ['classifier.weight', 'classifier.1.weight', 'predictions.kernel']) {
    const t = tensors.get(name);
    if (t && t.shape.length === 2) return name === 'predictions.kernel' ? t.shape[1] : t.shape[0];
  }
  return undefined;
}

/** The class count a detector's class net was trained for (its prediction conv has anchors * classes outputs). */
function detectorClassesIn(tensors: TensorMap, config: EfficientDetConfig, file: string): number | undefined {
  const name = 'class_net.predict.conv_pw.weight';
  const t = tensors.get(name);
  if (!t) return undefined;
  const anchors = config.numScales * config.aspectRatios.length;
  if (t.shape[0]! % anchors !== 0)
    throw new InvalidSpecError(`${file}: ${name}`, t.shape, `[anchors * classes, ...] with ${anchors} anchors per location; these weights are not ${config.name}'s`);
  return t.shape[0]! / anchors;
}

/** An EfficientDet by name, with random weights or a weight file in effdet's (= canonical) names. */
async function loadDetector(src: ModelSource): Promise<LoadedModel> {
  const naming = src.weightsFormat ?? 'effnet';
  if (naming !== 'effnet' && naming !== 'effdet') throw new InvalidSpecError('--weights-format', naming, `effnet or effdet for a detector (${src.variant})`);
  const detector = detectorConfig(src.variant);
  const spec = specFor(detector.backbone, { dropPathRate: detector.backboneDropPath });
  const build = (numClasses?: number) => buildEfficientDet(detector, { inputResolution: src.inputResolution, ...(numClasses ? { numClasses } : {}) });
  if (!src.weights) {
    const graph = build();
    return { spec, detector, graph, weights: randomWeights(graph), random: true };
  }
  const { tensors } = await readSafetensors(src.weights);
  const graph = build(detectorClassesIn(tensors, detector, src.weights));
  const weights = toCanonicalNames(naming, spec, tensors);
  try {
    bindWeights(graph, weights);
  } catch (e) {
    if (!(e instanceof WeightMismatchError)) throw e;
    const fits = detectorsFitting(weights);
    const hint = fits.length ? `hint: ${src.weights} holds the weights of ${fits.join(' or ')}, not ${detector.name}` : `hint: ${src.weights} fits no named EfficientDet`;
    throw new WeightMismatchError(e.missing, e.unexpected, e.misshaped, hint);
  }
  return { spec, detector, graph, weights, random: false, weightsFile: src.weights };
}

/**
 * A variant or detector plus (optionally) a weight file: the spec with the weight family's conventions, the graph
 * sized for the weights' classifier (or class net), and the weights under canonical names.
 */
export async function loadModel(src: ModelSource): Promise<LoadedModel> {
  if (isDetectorName(src.variant)) return loadDetector(src);
  let row: ReturnType<typeof resolveVariant>;
  try {
    row = resolveVariant(src.variant);
  } catch (e) {
    // Not a variant: maybe a pretrained entry (efficientnet_b0.ra_in1k), pulled and converted by the zoo.
    if (!(e instanceof UnknownVariantError)) throw e;
    const registry = await Registry.load();
    if (!registry.has(src.variant)) throw e;
    if (src.weights) throw new InvalidSpecError('--weights', src.weights, `nothing: "${src.variant}" is a pretrained entry and brings its own weights`);
    const w = await loadPretrainedWeights(src.variant, { registry, resolution: src.inputResolution });
    return { spec: w.spec, graph: w.graph, weights: w.weights, random: false, weightsFile: w.pulled.path, pretrained: w.entry.name };
  }
  const naming = (src.weightsFormat ?? 'effnet') as WeightNaming;
  if (!WEIGHT_NAMINGS.includes(naming)) throw new InvalidSpecError('--weights-format', src.weightsFormat, `one of ${WEIGHT_NAMINGS.join(', ')}`);
  const spec = specFor(row.name, naming === 'torchvision' ? { family: 'torchvision' } : {});
  const build = (numClasses?: number) => buildEfficientNet(spec, { inputResolution: src.inputResolution, ...(numClasses ? { numClasses } : {}) });
  if (!src.weights) {
    const graph = build();
    return { spec, graph, weights: randomWeights(graph), random: true };
  }
  const { tensors } = await readSafetensors(src.weights);
  const graph = build(classesIn(tensors));
  return { spec, graph, weights: toCanonicalNames(naming, spec, tensors), random: false, weightsFile: src.weights };
}
