import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { buildEfficientDet, buildEfficientNet, buildSegmenter, type EfficientDetConfig, type SegmenterConfig, segmenterConfig, type EfficientNetSpec, EffnetError, type Graph, readWeightFile, type TensorMap, validateDetectorConfig, validateSpec, writeFileAtomic, writeSafetensors } from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';

export const MODEL_CARD_FORMAT = 'effnet-model-card@1';

/** What a checkpoint's network does. */
export type CardTask = 'classification' | 'detection' | 'segmentation';

/** What a checkpoint is: the exact network, its classes and preprocessing, how it was trained and how it scored. */
export interface ModelCard {
  format: typeof MODEL_CARD_FORMAT;
  name: string;
  /** Absent: classification (cards written before detection and segmentation). */
  task?: CardTask;
  /** The variant (efficientnet_b0, efficientnet_phi-4, ...) or detector the network was built from. */
  arch: string;
  /** The EfficientNet (a detector's backbone). */
  spec: EfficientNetSpec;
  /** Detection: the detector the graph is built from (its class count is `classes.length`). */
  detector?: EfficientDetConfig;
  /** Segmentation: the segmenter the graph is built from (its head has `classes.length` outputs). */
  segmenter?: SegmenterConfig;
  /** Detection: each class's COCO category (id and name), in class order. */
  categories?: { id: number; name: string }[];
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

/** The safetensors metadata key that carries the card inside the weight file. */
export const CARD_METADATA_KEY = 'effnet.model_card';

/**
 * Saves a checkpoint as `<dir>/<stem>.safetensors` with its card embedded in the file's metadata, so that weights and
 * card are replaced by one atomic rename (a process killed mid-save leaves the old pair or the new one, never a card
 * that does not match its weights); then `<stem>.json`, the same card for people and tools to read.
 */
export async function saveCheckpoint(dir: string, stem: string, weights: TensorMap, card: ModelCard): Promise<void> {
  const full: ModelCard = { ...card, weights: `${stem}.safetensors` };
  await writeSafetensors(join(dir, `${stem}.safetensors`), weights, { format: 'pt', producer: 'effnet', [CARD_METADATA_KEY]: JSON.stringify(full) });
  await writeModelCard(join(dir, `${stem}.json`), full);
}

/** Checks a parsed card's format and required fields; `file` names it in errors. */
export function checkCard(raw: unknown, file: string): ModelCard {
  const card = raw as ModelCard;
  if (card?.format !== MODEL_CARD_FORMAT) throw new CheckpointError(`${file} is not an effnet model card (format "${(raw as { format?: string })?.format}", expected "${MODEL_CARD_FORMAT}")`);
  for (const f of ['spec', 'classes', 'preprocessing', 'weights'] as const)
    if (card[f] === undefined) throw new CheckpointError(`${file}: field "${f}" is missing`);
  if (card.task !== undefined && !['classification', 'detection', 'segmentation'].includes(card.task)) throw new CheckpointError(`${file}: task "${card.task}" is not classification, detection or segmentation`);
  if (card.task === 'detection' && !card.detector) throw new CheckpointError(`${file}: a detection card needs "detector" (the detector config)`);
  if (card.task === 'segmentation' && !card.segmenter) throw new CheckpointError(`${file}: a segmentation card needs "segmenter" (the segmenter config)`);
  try {
    validateSpec(card.spec);
    if (card.detector) validateDetectorConfig(card.detector);
  } catch (e) {
    throw new CheckpointError(`${file}: ${(e as Error).message}`);
  }
  return card;
}

async function readCardFile(file: string): Promise<ModelCard> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`cannot read the model card ${file}: ${(e as Error).message}; a checkpoint is a training output directory, its model.json, or a .safetensors with its card`);
  }
  return checkCard(raw, file);
}

/** The card embedded in a weight file's metadata, if any. */
function embeddedCard(metadata: Record<string, string>, weightsFile: string): ModelCard | undefined {
  const text = metadata[CARD_METADATA_KEY];
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${weightsFile}: the embedded model card is not valid JSON (${(e as Error).message})`);
  }
  return checkCard(raw, `${weightsFile} (embedded model card)`);
}

export interface LoadedCheckpoint {
  card: ModelCard;
  graph: Graph;
  weights: TensorMap;
  /** The weight file read. */
  weightsFile: string;
}

const WEIGHT_EXTENSION = /\.(safetensors|pth|pt)$/;

/**
 * A checkpoint's card, the graph it describes (sized for its classes and input) and its weights. `path` is a training
 * output directory (its model.safetensors), a card (.json) or a weight file (.safetensors, or a .pth told apart by
 * content; `weightsKey` picks the entry of a .pth training checkpoint). The card saved inside a safetensors weight
 * file wins over the .json beside it: it is the one written with these weights.
 */
export async function loadCheckpoint(path: string, o: { inputResolution?: number | [number, number] | null; weightsKey?: string } = {}): Promise<LoadedCheckpoint> {
  const s = await stat(path).catch(() => null);
  if (!s) throw new CheckpointError(`checkpoint "${path}" does not exist; pass a training output directory, its model.json, or a .safetensors with its card`);
  let weightsFile: string;
  let jsonCard: ModelCard | undefined;
  // A directory is its model.safetensors (card inside) or, for cards written by hand, its model.json.
  const cardFile = s.isDirectory() ? ((await stat(join(path, 'model.safetensors')).catch(() => null)) ? undefined : join(path, 'model.json')) : path.endsWith('.json') ? path : undefined;
  if (cardFile) {
    jsonCard = await readCardFile(cardFile);
    weightsFile = join(dirname(cardFile), basename(jsonCard.weights));
  } else weightsFile = s.isDirectory() ? join(path, 'model.safetensors') : path;
  const { tensors, metadata } = await readWeightFile(weightsFile, { weightsKey: o.weightsKey });
  let card = embeddedCard(metadata, weightsFile) ?? jsonCard;
  if (!card) {
    const beside = join(dirname(weightsFile), `${basename(weightsFile).replace(WEIGHT_EXTENSION, '')}.json`);
    card = await readCardFile(beside);
  }
  const graph = cardGraph(card, o.inputResolution === undefined ? card.preprocessing.inputSize : o.inputResolution);
  return { card, graph, weights: tensors, weightsFile };
}

/** The graph a card describes, for its classes, at an input size. */
export function cardGraph(card: ModelCard, inputResolution: number | [number, number] | null): Graph {
  switch (card.task ?? 'classification') {
    case 'detection':
      return buildEfficientDet(card.detector!, { numClasses: card.classes.length, inputResolution });
    case 'classification':
      return buildEfficientNet(card.spec, { numClasses: card.classes.length, inputResolution });
    case 'segmentation':
      // The decoder row is the card's (as trained); the name gives the encoder.
      return buildSegmenter({ ...segmenterConfig(card.segmenter!.name), decoder: card.segmenter!.decoder }, { numClasses: card.classes.length, inputResolution });
    default:
      throw new CheckpointError(`checkpoint "${card.name}": task "${card.task}" is not supported by this version of effnet`);
  }
}
