import {
  buildEfficientNet,
  type EfficientNetSpec,
  type Graph,
  InvalidSpecError,
  randomWeights,
  readWeightFile,
  resolveVariant,
  specFor,
  type TensorMap,
  toCanonicalNames,
  UnknownVariantError,
  WEIGHT_NAMINGS,
  type WeightNaming,
} from '@effnet/core';
import { loadPretrainedWeights, Registry } from '@effnet/zoo';

export interface ModelSource {
  variant: string;
  weights?: string;
  weightsFormat?: string;
  /** For a .pth checkpoint: the entry that holds the weights (default: found automatically). */
  weightsKey?: string;
  /** Static input size; null = dynamic. */
  inputResolution?: number | [number, number] | null;
}

export interface LoadedModel {
  spec: EfficientNetSpec;
  graph: Graph;
  weights: TensorMap;
  /** true when no weight file was given and the weights are a random initialisation. */
  random: boolean;
  /** The weight file the weights came from (a --weights file, or a pretrained entry's cached file). */
  weightsFile?: string;
  /** What the --weights file was (format, checkpoint entry, prefix removed, tensor count). */
  weightsDescription?: string;
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

/**
 * A variant plus (optionally) a weight file: the spec with the weight family's conventions, the graph sized for the
 * weights' classifier, and the weights under canonical names.
 */
export async function loadModel(src: ModelSource): Promise<LoadedModel> {
  let row: ReturnType<typeof resolveVariant>;
  try {
    row = resolveVariant(src.variant);
  } catch (e) {
    // Not a variant: maybe a pretrained entry (efficientnet_b0.ra_in1k), pulled and converted by the zoo.
    if (!(e instanceof UnknownVariantError)) throw e;
    const registry = await Registry.load();
    if (!registry.has(src.variant)) throw e;
    if (src.weights) throw new InvalidSpecError('--weights', src.weights, `nothing: "${src.variant}" is a pretrained entry and brings its own weights`);
    if (src.weightsKey !== undefined) throw new InvalidSpecError('--weights-key', src.weightsKey, `nothing: "${src.variant}" is a pretrained entry and brings its own weights`);
    const w = await loadPretrainedWeights(src.variant, { registry, resolution: src.inputResolution });
    return { spec: w.spec, graph: w.graph, weights: w.weights, random: false, weightsFile: w.pulled.path, pretrained: w.entry.name };
  }
  const naming = (src.weightsFormat ?? 'effnet') as WeightNaming;
  if (!WEIGHT_NAMINGS.includes(naming)) throw new InvalidSpecError('--weights-format', src.weightsFormat, `one of ${WEIGHT_NAMINGS.join(', ')}`);
  const spec = specFor(row.name, naming === 'torchvision' ? { family: 'torchvision' } : {});
  const build = (numClasses?: number) => buildEfficientNet(spec, { inputResolution: src.inputResolution, ...(numClasses ? { numClasses } : {}) });
  if (!src.weights) {
    if (src.weightsKey !== undefined) throw new InvalidSpecError('--weights-key', src.weightsKey, 'given only with --weights <checkpoint.pth>');
    const graph = build();
    return { spec, graph, weights: randomWeights(graph), random: true };
  }
  const file = await readWeightFile(src.weights, { weightsKey: src.weightsKey });
  const graph = build(classesIn(file.tensors));
  return { spec, graph, weights: toCanonicalNames(naming, spec, file.tensors), random: false, weightsFile: src.weights, weightsDescription: file.description };
}
