/**
 * Tensor file I/O: safetensors and NumPy .npy. Parsing and serializing work on bytes in memory;
 * the read and write functions use node:fs (loaded on first use) and write atomically.
 */
export {
  MAX_SAFETENSORS_HEADER_BYTES,
  parseSafetensors,
  readSafetensors,
  type SafetensorsContents,
  serializeSafetensors,
  writeSafetensors,
} from './safetensors.js';
export { parseNpy, readNpy, serializeNpy, writeNpy } from './npy.js';
export * from './files.js';
