/**
 * Self-describing ONNX files: an `effnet export` writes the model card (network, classes, preprocessing, task) into
 * the file's metadata_props, so that the .onnx alone is a model every command takes (`--model m.onnx`). This file
 * reads them back; `onnx-export.ts` writes them.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EffnetError, type Graph, type OnnxFileInfo, type OnnxModelBytes, readOnnxFileInfo } from '@effnet/core';
import { CARD_METADATA_KEY, cardGraph, checkCard, type ModelCard } from '../classification/model-card.js';

/** The metadata_props keys an effnet export writes (the card is what loading needs; the rest are for people and tools). */
export const ONNX_METADATA_KEYS = {
  card: CARD_METADATA_KEY,
  labels: 'effnet.labels',
  preprocessing: 'effnet.preprocessing',
  arch: 'effnet.arch',
  family: 'effnet.family',
  task: 'effnet.task',
  inputSize: 'effnet.input_size',
  precision: 'effnet.precision',
  nms: 'effnet.nms',
  externalData: 'effnet.external_data',
} as const;

/** An .onnx file that effnet cannot use as a model: says what is missing and what to do. */
export class OnnxModelError extends EffnetError {
  override name = 'OnnxModelError';
}

/** The input size recorded at export: [h, w], or null for a dynamic size. */
export function parseInputSize(text: string | undefined): [number, number] | null | undefined {
  if (text === undefined) return undefined;
  if (text === 'dynamic') return null;
  const m = /^(\d+)x(\d+)$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export interface LoadedOnnxModel {
  card: ModelCard;
  graph: Graph;
  onnx: OnnxModelBytes;
  info: OnnxFileInfo;
  /** int8, fp16 or fp32. */
  precision: string;
}

/**
 * An effnet-exported .onnx: its card, the network it was compiled from (at its input size, for input checks and
 * output names) and where it is (with its external data file when it has one). Only the file's headers are read here:
 * the runner reads the rest if it needs it (not when ONNX Runtime's optimized form of it is cached).
 */
export async function loadOnnxModel(path: string, o: { inputResolution?: number | [number, number] | null } = {}): Promise<LoadedOnnxModel> {
  const { info } = await readOnnxFileInfo(path);
  const md = info.metadata;
  const text = md[ONNX_METADATA_KEYS.card];
  if (text === undefined) {
    const effnetKeys = Object.keys(md).filter((k) => k.startsWith('effnet.'));
    const has = effnetKeys.length ? `it has ${effnetKeys.join(', ')} but not` : `its metadata_props (${Object.keys(md).join(', ') || 'none'}) lack`;
    throw new OnnxModelError(
      `${path} is not a self-describing effnet model: ${has} "${ONNX_METADATA_KEYS.card}" (the network, classes and preprocessing)` +
        `${info.producerName ? `; it was written by ${info.producerName}${info.producerVersion ? ` ${info.producerVersion}` : ''}` : ''}. ` +
        'Export the model with a current `effnet export <model> -o model.onnx`, or run the file with onnxruntime directly',
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new OnnxModelError(`${path}: the metadata "${ONNX_METADATA_KEYS.card}" is not valid JSON (${(e as Error).message}); export the model again`);
  }
  const card = checkCard(raw, `${path} (metadata "${ONNX_METADATA_KEYS.card}")`);
  if (md[ONNX_METADATA_KEYS.nms] === 'true')
    throw new OnnxModelError(`${path} has effnet's detection post-processing in the graph (exported with --nms: boxes, scores, classes, num_detections); run it with onnxruntime directly, or export without --nms to use it with effnet detect`);
  const size = parseInputSize(md[ONNX_METADATA_KEYS.inputSize]);
  if (size === undefined) throw new OnnxModelError(`${path}: the metadata "${ONNX_METADATA_KEYS.inputSize}" is missing or not HxW / dynamic ("${md[ONNX_METADATA_KEYS.inputSize]}"); export the model again`);
  let resolution: [number, number] | null = size;
  if (o.inputResolution !== undefined) {
    const want = typeof o.inputResolution === 'number' ? ([o.inputResolution, o.inputResolution] as [number, number]) : o.inputResolution;
    if (size !== null && want !== null && (want[0] !== size[0] || want[1] !== size[1]))
      throw new OnnxModelError(`${path} takes ${size[0]}x${size[1]} inputs (a fixed size, chosen at export); give inputs of that size, or export with --dynamic (or --resolution ${want[0]})`);
    if (size === null) resolution = want;
  }
  const graph = cardGraph(card, resolution);
  const location = md[ONNX_METADATA_KEYS.externalData];
  let externalData: OnnxModelBytes['externalData'];
  if (location !== undefined) {
    const file = join(dirname(path), location);
    const data = await readFile(file).catch((e: Error) => {
      throw new OnnxModelError(`${path} keeps its weights in ${file}, which cannot be read (${e.message}); keep the two files together`);
    });
    externalData = { location, bytes: data };
  }
  return { card, graph, onnx: { path, ...(externalData ? { externalData } : {}) }, info, precision: md[ONNX_METADATA_KEYS.precision] ?? (md['effnet.fp16'] === 'true' ? 'fp16' : 'fp32') };
}
