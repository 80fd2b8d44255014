/** What `effnet export` writes into an .onnx file's metadata_props so that the file alone is a model (see onnx-model.ts). */
import { basename } from 'node:path';
import { isDetectorName, resolveVariant } from '@effnet/core';
import { labelsOrIndices } from '../classification/classifier.js';
import { MODEL_CARD_FORMAT, type ModelCard } from '../classification/model-card.js';
import { detectorLabels } from '../detection/detector.js';
import { segmenterClasses } from '../segmentation/segmenter.js';
import { ONNX_METADATA_KEYS as K } from './onnx-model.js';
import type { ModelWeights } from './resolve.js';

/** The weight family (timm, tf, torchvision, keras, effnet, effdet) where it is known. */
function familyOf(m: ModelWeights, arch: string): string {
  if (m.ref.kind === 'pretrained') return m.ref.entry.family;
  if (m.detector || isDetectorName(arch)) return 'effdet';
  try {
    return resolveVariant(arch).family;
  } catch {
    return 'effnet';
  }
}

/** The model's card: a checkpoint's own, else one describing the zoo entry or architecture. */
export function exportCard(m: ModelWeights, file: string): ModelCard {
  if (m.card) return { ...m.card, weights: basename(file) };
  const task = m.detector ? 'detection' : m.segmenter ? 'segmentation' : 'classification';
  const numClasses = Number(m.graph.metadata.numClasses ?? 0);
  const classes = m.detector
    ? (() => {
        const l = detectorLabels(m, undefined);
        return l.length ? [...l] : Array.from({ length: numClasses }, (_, i) => `class ${i + 1}`);
      })()
    : m.segmenter
      ? segmenterClasses(m)
      : [...(m.classes ?? labelsOrIndices(m.labels ?? '', numClasses))];
  const arch = m.ref.kind === 'pretrained' ? m.ref.entry.arch : m.detector ? m.detector.name : m.segmenter ? m.segmenter.name : m.ref.kind === 'variant' ? m.ref.row.name : m.spec.name;
  return {
    format: MODEL_CARD_FORMAT,
    name: m.ref.name,
    task,
    arch,
    spec: m.spec,
    ...(m.detector ? { detector: m.detector } : {}),
    ...(m.segmenter ? { segmenter: m.segmenter } : {}),
    classes,
    preprocessing: m.preprocessing,
    weights: basename(file),
    base: m.random ? 'random' : m.ref.name,
    seed: 0,
    epoch: 0,
    step: 0,
    created: new Date().toISOString(),
  };
}

export interface ExportMetadataOptions {
  /** The .onnx file written (its name goes in the card). */
  file: string;
  precision?: 'fp32' | 'fp16' | 'int8';
  /** The detection post-processing is in the graph (export --nms). */
  nms?: boolean;
  /** More metadata_props (e.g. int8 calibration facts). */
  extra?: Record<string, string>;
}

/**
 * metadata_props for an exported model: the card (all a loader needs), and the labels, preprocessing, architecture,
 * family, task, input size and precision as their own keys for tools that read ONNX metadata.
 */
export function onnxExportMetadata(m: ModelWeights, o: ExportMetadataOptions): Record<string, string> {
  const card = exportCard(m, o.file);
  const input = m.graph.inputs[0]!;
  return {
    'effnet.weights': m.random ? 'random initialisation' : basename(m.weightsFile ?? m.ref.name),
    'effnet.model': m.ref.name,
    'effnet.source': m.ref.kind,
    [K.card]: JSON.stringify(card),
    [K.labels]: JSON.stringify(card.classes),
    [K.preprocessing]: JSON.stringify(card.preprocessing),
    [K.arch]: card.arch,
    [K.family]: familyOf(m, card.arch),
    [K.task]: card.task ?? 'classification',
    [K.inputSize]: input.height === null || input.width === null ? 'dynamic' : `${input.height}x${input.width}`,
    [K.precision]: o.precision ?? 'fp32',
    ...(o.nms ? { [K.nms]: 'true' } : {}),
    ...o.extra,
  };
}
