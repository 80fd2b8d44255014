/**
 * One entry point for weight files: safetensors and PyTorch checkpoints (zip or legacy .pth), told apart by their
 * first bytes rather than their extension (a `.bin` or `.pt` may be either, and names lie).
 */
import { TensorFileError } from '../errors.js';
import type { TensorMap } from '../tensor.js';
import { readFileBytes } from './files.js';
import { looksLikeLegacyPth, parsePth } from './pth.js';
import { parseSafetensors } from './safetensors.js';
import { loadInflate, looksLikeZip } from './zip.js';

export type WeightFileFormat = 'safetensors' | 'pth';

/** Named weights from a file, with where they came from. */
export interface WeightFile {
  tensors: TensorMap;
  format: WeightFileFormat;
  /** For .pth: 'zip' or 'legacy'. */
  container?: 'zip' | 'legacy';
  /** For .pth: the checkpoint entry the weights came from ('state_dict', ...); null when the file is a state_dict. */
  key: string | null;
  /** For .pth: the wrapper prefix removed from every name ('module.'), or null. */
  strippedPrefix: string | null;
  /** safetensors `__metadata__` (empty for .pth). */
  metadata: Record<string, string>;
  /** One line for a user: "PyTorch checkpoint (zip), entry "state_dict", prefix "module." removed, 360 tensors". */
  description: string;
}

export interface WeightFileOptions {
  /** Name used in error messages. */
  file?: string;
  /** For checkpoints: the entry that holds the weights (default: found automatically). */
  weightsKey?: string;
}

/** What the first bytes say a file is. */
export function sniffWeightFile(bytes: Uint8Array): WeightFileFormat | 'npy' | 'hdf5' | 'unknown' {
  if (looksLikeZip(bytes) || looksLikeLegacyPth(bytes)) return 'pth';
  if (bytes.length >= 6 && bytes[0] === 0x93 && new TextDecoder('latin1').decode(bytes.subarray(1, 6)) === 'NUMPY') return 'npy';
  if (bytes.length >= 8 && bytes[0] === 0x89 && new TextDecoder('latin1').decode(bytes.subarray(1, 4)) === 'HDF') return 'hdf5';
  // safetensors: a u64 header length, then a JSON object.
  if (bytes.length >= 9 && bytes[8] === 0x7b) return 'safetensors';
  return 'unknown';
}

/**
 * Parses weights held in memory, whatever their format (see {@link sniffWeightFile}).
 * @throws TensorFileError naming the file: malformed, not a weight file, or a weights key for a file that has none
 */
export function parseWeightFile(bytes: Uint8Array, o: WeightFileOptions = {}): WeightFile {
  const file = o.file ?? '<buffer>';
  const kind = sniffWeightFile(bytes);
  switch (kind) {
    case 'pth': {
      const r = parsePth(bytes, { file, weightsKey: o.weightsKey });
      const parts = [`PyTorch checkpoint (${r.format})`];
      if (r.key !== null) parts.push(`entry "${r.key}"`);
      if (r.strippedPrefix) parts.push(`prefix "${r.strippedPrefix}" removed`);
      parts.push(`${r.tensors.size} tensors`);
      return { tensors: r.tensors, format: 'pth', container: r.format, key: r.key, strippedPrefix: r.strippedPrefix, metadata: {}, description: parts.join(', ') };
    }
    case 'safetensors': {
      if (o.weightsKey !== undefined) throw new TensorFileError(file, `is a safetensors file, which holds one set of weights; drop the weights key "${o.weightsKey}"`);
      const r = parseSafetensors(bytes, file);
      return { tensors: r.tensors, format: 'safetensors', key: null, strippedPrefix: null, metadata: r.metadata, description: `safetensors, ${r.tensors.size} tensors` };
    }
    case 'npy':
      throw new TensorFileError(file, 'is a NumPy .npy array, not named weights; weights come as .safetensors or a PyTorch .pth checkpoint');
    case 'hdf5':
      throw new TensorFileError(file, 'is an HDF5 file (Keras .h5); Keras weights load through a zoo registry entry with format "h5"');
    case 'unknown':
      throw new TensorFileError(file, 'is neither safetensors nor a PyTorch checkpoint (.pth); check the path, or that the download finished');
  }
}

/**
 * Reads a weight file, safetensors or PyTorch checkpoint, told apart by content.
 * @throws TensorFileError naming `path` (see {@link parseWeightFile})
 */
export async function readWeightFile(path: string, o: Omit<WeightFileOptions, 'file'> = {}): Promise<WeightFile> {
  await loadInflate();
  return parseWeightFile(await readFileBytes(path), { ...o, file: path });
}
