/**
 * Training a segmenter on `DIR/images` + `DIR/masks`: joint augmentation (scale, crop, flip; nearest for masks),
 * cross-entropy with ignore_index 255, smp's multiclass Dice, or their sum, an optionally frozen encoder, validation
 * mIoU each epoch, through the one training loop (checkpoints with cards, resume, early stopping, curves).
 */
import {
  buildSegmenter,
  checkNumber,
  claimOutputDir,
  deriveSeed,
  float32Tensor,
  forEachConcurrent,
  InvalidSpecError,
  type LossSpec,
  randomWeights,
  SEGMENTATION_OUTPUT,
  type SegmenterConfig,
  segmenterInputMultiple,
  seededShuffle,
  selectTrainable,
  specFor,
  type TensorMap,
} from '@effnet/core';
import type { Preprocessing } from '@effnet/zoo';
import type { ModelCard } from '../classification/model-card.js';
import type { RgbImage } from '../images/decode.js';
import { writeNormalized } from '../images/preprocess.js';
import { loadModelWeights, resolveModel, segmenterPreprocessing } from '../models/resolve.js';
import { checkpointStart, defaultTrainingDevice, freshStart, lastCard, onnxNotTrainable, runCardFields, type RunStart, runTrainingLoop, saveEpoch, TrainingError, trainingBackend, type TrainingRunOptions, type TrainingRunResult } from '../training/loop.js';
import { checkRecipeOptions, type Recipe, type RecipeOptions, resolveRecipe, resumedRecipeOptions, trainerSettings } from '../training/recipe.js';
import { resizePair, segmentationTrainTransform } from './augment.js';
import { loadSegmentationDataset, loadSegmentationPair, type SegmentationSample } from './dataset.js';
import { IGNORE_INDEX, type IndexMask } from './index-png.js';
import { SegmentationConfusion, type SegmentationMetrics } from './metrics.js';
import { predictMasks } from './segmenter.js';

export type SegmentationLossName = 'ce' | 'dice' | 'ce+dice';
export const SEGMENTATION_LOSSES: readonly SegmentationLossName[] = ['ce', 'dice', 'ce+dice'];

export interface FineTuneSegmenterOptions extends RecipeOptions, TrainingRunOptions {
  /** A dataset directory (images/ + masks/ [+ classes.txt]) to train on. */
  data: string;
  /** A validation dataset with the same classes; else a seeded split of `data`. */
  val?: string;
  valFraction?: number;
  /** Where to start: a segmenter checkpoint, a segmentation zoo entry, or a segmenter architecture. */
  model: string;
  /** A classifier (zoo entry or checkpoint) whose trunk initialises a segmenter architecture's encoder. */
  encoder?: string;
  /** 'encoder': train the decoder and head only (bifpnseg: the head; the backbone and BiFPN stay). */
  freeze?: 'none' | 'encoder';
  loss?: SegmentationLossName;
  /** Training and evaluation side (a multiple of 32; of 128 for bifpnseg); default the start's input size. */
  size?: number;
  onRecipe?: (recipe: Recipe) => void;
}

export type FineTuneSegmenterResult = TrainingRunResult;

/** The loss terms of a choice: CE (ignore 255, optional label smoothing), smp's multiclass Dice (ignore 255), or their sum, on `labels`. */
export function segmentationLoss(name: SegmentationLossName, labelSmoothing = 0): LossSpec {
  const terms: LossSpec['terms'] = [];
  if (name === 'ce' || name === 'ce+dice') terms.push({ kind: 'softmaxCrossEntropy', output: SEGMENTATION_OUTPUT, target: 'labels', ignoreIndex: IGNORE_INDEX, labelSmoothing });
  if (name === 'dice' || name === 'ce+dice') terms.push({ kind: 'dice', output: SEGMENTATION_OUTPUT, target: 'labels', ignoreIndex: IGNORE_INDEX });
  if (!terms.length) throw new InvalidSpecError('loss', name, `one of ${SEGMENTATION_LOSSES.join(', ')}`);
  return { targets: [{ name: 'labels', dtype: 'int64' }], terms };
}

interface Start extends RunStart {
  config: SegmenterConfig;
  /** The decoder starts from random weights on a trained encoder (--encoder). */
  newDecoder?: boolean;
}

async function startingPoint(o: FineTuneSegmenterOptions, classes: string[]): Promise<Start> {
  const fromCheckpoint = async (path: string, resume: boolean): Promise<Start> => {
    const { checkpoint, start } = await checkpointStart(path, { task: 'segmentation', classes, resume, hint: `a segmenter starts from a segmenter (or a segmenter architecture with --backbone ${path})` });
    return { ...start, config: checkpoint.card.segmenter! };
  };
  if (o.resume) return fromCheckpoint(o.out, true);
  const ref = await resolveModel(o.model);
  if (o.encoder !== undefined && ref.kind !== 'segmenter') throw new InvalidSpecError('--backbone', o.encoder, `nothing with --model ${o.model}: --backbone initialises a segmenter architecture's encoder (e.g. unet_efficientnet_b0)`);
  switch (ref.kind) {
    case 'onnx':
      throw onnxNotTrainable(o.model);
    case 'checkpoint':
      return fromCheckpoint(ref.path, false);
    case 'pretrained': {
      if (ref.entry.task !== 'segmentation') throw new TrainingError(`"${o.model}" is a ${ref.entry.task ?? 'classification'} zoo entry; a segmenter starts from a segmentation entry (effnet-shapes-seg), a segmenter checkpoint or architecture (give a classifier as --backbone)`);
      const m = await loadModelWeights(o.model);
      return { ...freshStart(m.preprocessing, m.weights, ref.entry.name), config: m.segmenter! };
    }
    case 'segmenter': {
      const preprocessing = segmenterPreprocessing(ref.config, buildSegmenter(ref.config));
      if (o.encoder === undefined) return { ...freshStart(preprocessing, null, 'random'), config: ref.config };
      return { ...freshStart(preprocessing, await encoderWeights(o.encoder, ref.config), `${ref.config.name} on ${o.encoder}`), config: ref.config, newDecoder: true };
    }
    case 'variant':
    case 'detector':
      throw new TrainingError(`"${o.model}" is a ${ref.kind === 'variant' ? 'classifier architecture' : 'detector'}; a segmenter starts from a segmenter architecture (unet_${ref.kind === 'variant' ? ref.row.name : 'efficientnet_b0'}), checkpoint or zoo entry`);
  }
}

/**
 * The trained start of a segmenter's features: a classifier's trunk (and unused head conv) as its `encoder.` weights;
 * for bifpnseg a detector's `backbone.*` and `fpn.*` (the same detector), or a classifier as its `backbone.*`. Checked
 * name by name and shape by shape.
 */
async function encoderWeights(name: string, config: SegmenterConfig): Promise<TensorMap> {
  const c = await loadModelWeights(name);
  const bifpn = config.detector !== undefined;
  if (c.segmenter || (c.detector && !bifpn)) throw new TrainingError(`--backbone ${name} is a ${c.detector ? 'detector' : 'segmenter'}; give a classifier whose network is the encoder (${config.encoder})`);
  if (c.random) throw new TrainingError(`--backbone ${name} has no trained weights; give a ${bifpn ? `${config.detector} detector or ` : ''}classifier zoo entry or checkpoint (a ${config.encoder})`);
  const graph = buildSegmenter(config);
  // Where each segmenter parameter is in the start's weights: a detector's own names, or a classifier's under the prefix.
  const prefix = bifpn ? 'backbone.' : 'encoder.';
  const source = (p: string): string | null => (c.detector ? (p.startsWith('seg_head.') ? null : p) : p.startsWith(prefix) ? p.slice(prefix.length) : null);
  const what = c.detector ? `${c.detector.name}` : c.spec.name;
  const wanted = c.detector ? config.detector! : config.encoder;
  const out: TensorMap = new Map();
  for (const p of graph.parameters) {
    const key = source(p.name);
    if (key === null) continue;
    const t = c.weights.get(key);
    if (!t || t.shape.join() !== p.shape.join())
      throw new TrainingError(`--backbone ${name} (${what}) is not the segmenter's ${c.detector ? 'detector' : 'encoder'} (${wanted}): ${key} is ${t ? `[${t.shape.join(', ')}]` : 'missing'}, the segmenter needs [${p.shape.join(', ')}]`);
    out.set(p.name, t);
  }
  return out;
}

function checkOptions(o: FineTuneSegmenterOptions): void {
  checkNumber('epochs', o.epochs, { integer: true, min: 1 });
  if (o.batch !== undefined) checkNumber('batch', o.batch, { integer: true, min: 1 });
  if (o.size !== undefined && (!Number.isInteger(o.size) || o.size < 32 || o.size % 32)) throw new InvalidSpecError('size', o.size, 'a positive multiple of 32');
  if (o.patience !== undefined) checkNumber('patience', o.patience, { integer: true, min: 1 });
  if (o.seed !== undefined) checkNumber('seed', o.seed, { integer: true, min: 0 });
  if (o.valFraction !== undefined) checkNumber('valFraction', o.valFraction, { above: 0, below: 1 });
  if (o.freeze !== undefined && o.freeze !== 'none' && o.freeze !== 'encoder') throw new InvalidSpecError('freeze', o.freeze, "'none' or 'encoder'");
  if (o.loss !== undefined && !SEGMENTATION_LOSSES.includes(o.loss)) throw new InvalidSpecError('loss', o.loss, `one of ${SEGMENTATION_LOSSES.join(', ')}`);
  if (o.resume && o.force) throw new InvalidSpecError('resume and force', true, 'one of them: --resume continues the run in --out, --force replaces it');
  checkRecipeOptions(o);
}

/** Decoded images and masks of samples (four at a time). */
export async function loadPairs(samples: readonly SegmentationSample[], numClasses: number): Promise<{ image: RgbImage; mask: IndexMask }[]> {
  const out: { image: RgbImage; mask: IndexMask }[] = new Array(samples.length);
  await forEachConcurrent(samples.length, 4, async (i) => {
    out[i] = await loadSegmentationPair(samples[i]!, numClasses);
  });
  return out;
}

/** mIoU, pixel accuracy and per-class IoU of predicted masks (at each image's size) against the labels. */
export function scoreMasks(pairs: readonly { mask: IndexMask }[], predictions: readonly Uint8Array[], numClasses: number): SegmentationMetrics {
  const cm = new SegmentationConfusion(numClasses);
  pairs.forEach((p, i) => cm.add(p.mask.data, predictions[i]!));
  return cm.metrics();
}

/**
 * Trains (or fine-tunes) a segmenter: a new head for the dataset's classes (kept when the start has the same
 * classes), validation mIoU each epoch, checkpoints that `effnet segment` and `Segmenter.load` take.
 */
export async function fineTuneSegmenter(o: FineTuneSegmenterOptions): Promise<FineTuneSegmenterResult> {
  checkOptions(o);
  const seed = o.seed ?? 0;
  const batchSize = o.batch ?? 8;
  const lossName = o.loss ?? 'ce';
  const train = await loadSegmentationDataset(o.data);
  const val = o.val ? await loadSegmentationDataset(o.val) : undefined;
  if (val && val.classes.join('\n') !== train.classes.join('\n'))
    throw new TrainingError(`${o.val} has other classes than ${o.data} (${val.classes.join(', ')} against ${train.classes.join(', ')}); give both the same classes.txt`);
  let trainSamples = train.samples;
  let valSamples = val?.samples ?? [];
  if (!val) {
    const order = seededShuffle(train.samples.length, deriveSeed(seed, 0x5e9));
    const nVal = train.samples.length < 2 ? 0 : Math.max(1, Math.round(train.samples.length * (o.valFraction ?? 0.1)));
    const valIdx = new Set(order.slice(0, nVal));
    trainSamples = train.samples.filter((_, i) => !valIdx.has(i));
    valSamples = train.samples.filter((_, i) => valIdx.has(i));
  }
  if (!trainSamples.length) throw new TrainingError(`${o.data} has no images to train on`);
  const classes = train.classes;
  const start = await startingPoint(o, classes);
  const size = o.size ?? start.preprocessing.inputSize;
  const multiple = segmenterInputMultiple(start.config);
  if (size % multiple) throw new InvalidSpecError('size', size, `a multiple of ${multiple} for ${start.config.name} (pass --size)`);
  if (!o.resume) await claimOutputDir(o.out, { owner: 'effnet train', force: o.force, flag: '--out', hint: 'pass --resume to continue that run, --force to replace it, or choose another --out' });
  const config = start.config;
  const graph = buildSegmenter(config, { numClasses: classes.length, inputResolution: size });
  const weights: TensorMap = new Map(randomWeights(graph, seed));
  // A new head for new classes (smp's segmentation_head, bifpnseg's last transposed conv); the rest is kept.
  const headPrefix = config.detector ? 'seg_head.head_transpose.' : 'segmentation_head.';
  if (start.weights) for (const [name, t] of start.weights) if (weights.has(name) && (start.keepHead || !name.startsWith(headPrefix))) weights.set(name, t);
  const preprocessing: Preprocessing = { ...start.preprocessing, inputSize: size, cropPct: 1 };
  const stepsPerEpoch = Math.ceil(trainSamples.length / batchSize);
  const recipe = resolveRecipe(o.resume ? resumedRecipeOptions(start.recipe, o) : o, { imageSize: size, trainImages: trainSamples.length, stepsPerEpoch, epochs: o.epochs, pretrained: start.weights !== null, frozenBackbone: o.freeze === 'encoder', task: 'segmentation', newHeads: start.newDecoder ?? (start.weights !== null && !start.keepHead) });
  o.onRecipe?.(recipe);
  const jitter = recipe.scaleJitter ?? [1, 1];
  const backendName = o.backend ?? 'auto';
  const backend = await trainingBackend(backendName);
  const freeze = o.freeze ?? 'none';
  const session = await backend.createTrainer(graph, weights, {
    ...trainerSettings(recipe, stepsPerEpoch * o.epochs),
    loss: segmentationLoss(lossName, recipe.labelSmoothing),
    // Frozen features: smp's encoder, or bifpnseg's backbone and BiFPN (its head trains).
    trainable: freeze === 'encoder' ? selectTrainable(graph, { freeze: config.detector ? ['backbone', 'fpn'] : ['encoder'] }) : undefined,
    freezeBatchNorm: false,
    seed,
    startStep: start.step,
    device: o.device ?? defaultTrainingDevice(backendName),
  });
  const [trainPairs, valPairs] = await Promise.all([loadPairs(trainSamples, classes.length), loadPairs(valSamples, classes.length)]);
  const plane = 3 * size * size;
  const history = [...start.history];
  let card: ModelCard | undefined;
  let result: Awaited<ReturnType<typeof runTrainingLoop>>;
  try {
    result = await runTrainingLoop({
      session,
      size: trainSamples.length,
      batchSize,
      epochs: o.epochs,
      startEpoch: start.epoch,
      seed,
      history: start.history,
      patience: o.patience,
      metric: 'mIoU',
      onProgress: o.onProgress,
      async batch(indices, epoch) {
        const x = float32Tensor([indices.length, 3, size, size]);
        const labels = new BigInt64Array(indices.length * size * size);
        indices.forEach((i, b) => {
          const p = trainPairs[i]!;
          const aug = recipe.augment === 'none' && !recipe.flip ? resizePair(p.image, p.mask, size) : segmentationTrainTransform(p.image, p.mask, { size, seed: deriveSeed(seed, epoch, i), scale: jitter, hflip: recipe.flip ? 0.5 : 0 });
          writeNormalized(aug.image, preprocessing, x.data as Float32Array, b * plane);
          for (let k = 0; k < size * size; k++) labels[b * size * size + k] = BigInt(aug.mask.data[k]!);
        });
        return { input: x, targets: { labels: { dtype: 'int64' as const, shape: [indices.length, size, size], data: labels } } };
      },
      async validate(s) {
        if (!valPairs.length) return { mIoU: Number.NaN, pixelAccuracy: Number.NaN };
        const masks = await predictMasks((x) => s.predictAll(x), valPairs.map((p) => p.image), { preprocessing, size, batchSize });
        const m = scoreMasks(valPairs, masks, classes.length);
        return { mIoU: m.mIoU, pixelAccuracy: m.pixelAccuracy };
      },
      async save(row, best) {
        history.push(row);
        card = {
          ...runCardFields({
            name: o.name,
            out: o.out,
            fallbackName: 'segmenter',
            base: start.base,
            seed,
            steps: session.steps,
            row,
            history,
            data: o.data,
            val: o.val,
            valFraction: o.valFraction,
            trainImages: trainSamples.length,
            valImages: valSamples.length,
            epochs: o.epochs,
            batch: batchSize,
            backend: backend.name,
            device: session.device,
            freeze,
            extra: { scaleJitter: jitter, loss: lossName === 'ce' ? 'cross-entropy, ignore_index 255' : lossName === 'dice' ? "smp's multiclass DiceLoss, ignore_index 255" : "cross-entropy + smp's multiclass DiceLoss, ignore_index 255" },
            recipe,
          }),
          task: 'segmentation',
          arch: config.name,
          spec: specFor(config.encoder),
          segmenter: config,
          classes,
          preprocessing,
          metrics: { mIoU: row.mIoU ?? Number.NaN, pixelAccuracy: row.pixelAccuracy ?? Number.NaN, trainLoss: row.trainLoss! },
        };
        await saveEpoch(o.out, session.weights(), card, best, history, ['mIoU', 'pixelAccuracy']);
      },
    });
  } finally {
    session.dispose();
  }
  return { card: lastCard(card, o.out, start.epoch, o.epochs), out: o.out, stoppedEarly: result.stoppedEarly, history: result.history, recipe };
}
