/** Options several commands share, declared once. */
import { WEIGHT_NAMINGS } from '@effnet/core';
import type { OptionSpec } from '../args.js';

export const MODEL_OPTIONS = {
  weights: { type: 'string', valueName: 'FILE', description: 'weights for a variant (.safetensors or a PyTorch .pth); checkpoints and zoo entries bring their own' },
  'weights-format': { type: 'string', choices: WEIGHT_NAMINGS, valueName: 'NAMING', description: 'how the --weights file names its tensors' },
  'weights-key': { type: 'string', valueName: 'KEY', description: 'the entry of a .pth training checkpoint that holds the weights (default: found, and said)' },
} as const satisfies Record<string, OptionSpec>;

export const BACKEND_OPTIONS = {
  backend: { type: 'string', choices: ['onnx', 'tfjs'], default: 'onnx', valueName: 'NAME', description: 'the runtime' },
  device: { type: 'string', choices: ['auto', 'cpu', 'cuda', 'webgpu', 'gpu', 'wasm', 'js'], valueName: 'DEVICE', description: 'where it runs (default cpu for onnx, auto for tfjs)' },
  threads: { type: 'number', integer: true, min: 1, max: 1024, valueName: 'N', description: 'CPU threads' },
  'allow-nan': { type: 'boolean', description: 'let NaN and infinite values through in inputs and weights (refused by default)' },
} as const satisfies Record<string, OptionSpec>;

export const FORCE_OPTION = {
  force: { type: 'boolean', description: 'replace outputs that already exist (refused by default)' },
} as const satisfies Record<string, OptionSpec>;

export const MODEL_HELP = 'A model is a checkpoint path, an .onnx file written by effnet export, a variant (architecture; random weights unless --weights) or a zoo entry (pretrained).';
