import { type EfficientNetSpec, readSafetensors, type TensorMap, toCanonicalNames } from '@effnet/core';
import { NotLoadableError } from '../errors.js';
import type { NameScheme, RegistryEntry, WeightFormat } from '../registry/schema.js';
import { fromKeras, readKerasH5 } from './keras.js';

export { fromKeras, kerasLayerTarget, permute, readKerasH5, type KerasConversion } from './keras.js';

export interface ConvertedWeights {
  /** Canonical (timm) names, PyTorch layouts. Unknown names are kept, so that binding reports them. */
  tensors: TensorMap;
  notes: string[];
}

/**
 * Renames a state_dict of any supported scheme to canonical names: timm and effnet are identity, torchvision uses
 * core's single torchvision table, Keras renames and transposes (keys `<layer>/<var>`).
 */
export function toCanonical(naming: NameScheme, spec: EfficientNetSpec, tensors: TensorMap): ConvertedWeights {
  switch (naming) {
    case 'timm':
    case 'effnet':
    case 'torchvision':
      return { tensors: toCanonicalNames(naming, spec, tensors), notes: [] };
    case 'keras':
      return fromKeras(spec, tensors);
  }
}

/** Reads a weight file of the given format and naming and converts it to canonical names. */
export async function readWeights(file: string, format: WeightFormat, naming: NameScheme, spec: EfficientNetSpec, name = file): Promise<ConvertedWeights> {
  switch (format) {
    case 'safetensors':
      return toCanonical(naming, spec, (await readSafetensors(file)).tensors);
    case 'h5':
      return toCanonical(naming, spec, await readKerasH5(file));
    case 'pth':
      throw new NotLoadableError(
        `"${name}" is a PyTorch pickle (.pth), which effnet does not read. Convert it once with Python ` +
          `(from safetensors.torch import save_file; save_file(torch.load("${file}"), "model.safetensors")), then add it to a ` +
          `registry file as {"name": ..., "arch": ..., "family": "torchvision", "format": "safetensors", "url": "model.safetensors", "sha256": ...}`,
      );
  }
}

/** readWeights for a registry entry's file. */
export function readEntryWeights(entry: RegistryEntry, file: string, spec: EfficientNetSpec): Promise<ConvertedWeights> {
  return readWeights(file, entry.format, entry.naming, spec, entry.name);
}
