import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { buildEfficientNet, type EfficientNetSpec, EffnetError, type Graph, readWeightFile, type TensorMap, validateSpec, writeFileAtomic } from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';

export const MODEL_CARD_FORMAT = 'effnet-model-card@1';

/** What a checkpoint is: the exact network, its classes and preprocessing, how it was trained and how it scored. */
export interface ModelCard {
  format: typeof MODEL_CARD_FORMAT;
  name: string;
  /** The variant name (efficientnet_b0, efficientnet_phi-4, ...) the spec was built from. */
  arch: string;
  spec: EfficientNetSpec;
  classes: string[];
  preprocessing: Preprocessing;
  /** The weight file (safetensors, or a PyTorch .pth checkpoint), relative to the card. */
  weights: string;
  /** Where the starting weights came from: a zoo name, a checkpoint, or "random". */
  base: string;
  seed: number;
  epoch: number;
  /** Optimisation steps done so far (the schedule resumes from here). */
  step: number;
  training?: Record<string, unknown>;
  metrics?: Record<string, number>;
  history?: Record<string, number>[];
  created: string;
}

export class CheckpointError extends EffnetError {
  override name = 'CheckpointError';
}

export async function writeModelCard(path: string, card: ModelCard): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(card, null, 2) + '\n'));
}

/** Whether a path exists (a checkpoint, rather than a zoo or variant name). */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

const WEIGHT_EXTENSION = /\.(safetensors|pth|pt)$/;

/** A card path from a directory (its model.json), a .json, or a weight file (.safetensors, .pth, .pt) with a .json beside it. */
async function cardPath(path: string): Promise<string> {
  const s = await stat(path).catch(() => null);
  if (!s) throw new CheckpointError(`checkpoint "${path}" does not exist; pass a training output directory, its model.json, or a .safetensors with a .json beside it`);
  if (s.isDirectory()) return join(path, 'model.json');
  if (WEIGHT_EXTENSION.test(path)) return path.replace(WEIGHT_EXTENSION, '.json');
  return path;
}

export async function readModelCard(path: string): Promise<{ card: ModelCard; file: string }> {
  const file = await cardPath(path);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`cannot read the model card ${file}: ${(e as Error).message}; a checkpoint is a .safetensors file with its model card (.json) beside it`);
  }
  const card = raw as ModelCard;
  if (card?.format !== MODEL_CARD_FORMAT) throw new CheckpointError(`${file} is not an effnet model card (format "${(raw as { format?: string })?.format}", expected "${MODEL_CARD_FORMAT}")`);
  for (const f of ['spec', 'classes', 'preprocessing', 'weights'] as const)
    if (card[f] === undefined) throw new CheckpointError(`${file}: field "${f}" is missing`);
  try {
    validateSpec(card.spec);
  } catch (e) {
    throw new CheckpointError(`${file}: ${(e as Error).message}`);
  }
  return { card, file };
}

export interface LoadedCheckpoint {
  card: ModelCard;
  graph: Graph;
  weights: TensorMap;
  /** The weight file read. */
  weightsFile: string;
}

/**
 * A checkpoint's card, the graph it describes (sized for its classes and input) and its weights (safetensors or a
 * .pth checkpoint, told apart by content; `weightsKey` picks the entry of a .pth training checkpoint).
 */
export async function loadCheckpoint(path: string, o: { inputResolution?: number | [number, number] | null; weightsKey?: string } = {}): Promise<LoadedCheckpoint> {
  const { card, file } = await readModelCard(path);
  const weightsFile = join(dirname(file), basename(card.weights));
  const { tensors } = await readWeightFile(weightsFile, { weightsKey: o.weightsKey });
  const graph = buildEfficientNet(card.spec, {
    numClasses: card.classes.length,
    inputResolution: o.inputResolution === undefined ? card.preprocessing.inputSize : o.inputResolution,
  });
  return { card, graph, weights: tensors, weightsFile };
}
