/**
 * Tensor file I/O: safetensors, NumPy .npy and PyTorch checkpoints (.pth, read only). Parsing and serializing work
 * on bytes in memory; the read and write functions use node:fs (loaded on first use) and write atomically.
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
export { CHECKPOINT_KEYS, MAX_MATERIALIZED_RATIO, parsePth, PTH_ALLOWED_GLOBALS, type PthContents, type PthOptions, readPth } from './pth.js';
export {
  parseWeightFile,
  readWeightFile,
  sniffWeightFile,
  type WeightFile,
  type WeightFileFormat,
  type WeightFileOptions,
} from './weight-file.js';
export { type OnnxFileInfo, type OnnxValueShape, parseOnnxInfo, readOnnxFileInfo } from './onnx-metadata.js';
export { resolveCacheDir } from './cache-dir.js';
