import { type EfficientNetSpec, readWeightFile, type TensorMap, toCanonicalNames, type WeightNaming } from '@effnet/core';
import type { RegistryEntry, WeightFormat } from '../registry/schema.js';
import { readKerasH5 } from './keras.js';

export { readKerasH5 } from './keras.js';

export interface ConvertedWeights {
  /** Canonical (timm) names, PyTorch layouts. Unknown names are kept, so that binding reports them. */
  tensors: TensorMap;
  notes: string[];
}

/**
 * Renames a state_dict of any supported scheme to canonical names: timm, effnet and effdet are identity, torchvision uses
 * core's single torchvision table, Keras renames and transposes (keys `<layer>/<var>`).
 */
export function toCanonical(naming: WeightNaming, spec: EfficientNetSpec, tensors: TensorMap): ConvertedWeights {
  const notes: string[] = [];
  return { tensors: toCanonicalNames(naming, spec, tensors, notes), notes };
}

export interface ReadWeightsOptions {
  /** For a .pth checkpoint: the entry that holds the weights (default: found automatically). */
  weightsKey?: string;
}

/**
 * Reads a weight file and converts it to canonical names. safetensors and .pth files are told apart by content
 * (core's readWeightFile); a file that turns out to be the other of the two is read all the same, with a note.
 */
export async function readWeights(file: string, format: WeightFormat, naming: WeightNaming, spec: EfficientNetSpec, o: ReadWeightsOptions = {}): Promise<ConvertedWeights> {
  if (format === 'h5') return toCanonical(naming, spec, await readKerasH5(file));
  const read = await readWeightFile(file, { weightsKey: o.weightsKey });
  const converted = toCanonical(naming, spec, read.tensors);
  const notes = [...converted.notes];
  if (read.format !== format) notes.push(`declared ${format}, but the file is ${read.format}; read as ${read.format}`);
  if (read.format === 'pth') notes.push(`read ${read.description}`);
  return { tensors: converted.tensors, notes };
}

/** readWeights for a registry entry's file (its weightsKey unless `o` names another). */
export function readEntryWeights(entry: RegistryEntry, file: string, spec: EfficientNetSpec, o: ReadWeightsOptions = {}): Promise<ConvertedWeights> {
  return readWeights(file, entry.format, entry.naming, spec, { weightsKey: o.weightsKey ?? entry.weightsKey });
}
