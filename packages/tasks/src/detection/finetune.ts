/**
 * Fine-tuning an EfficientDet on a COCO-format dataset (`DIR/annotations.json` + images): effdet's training transform
 * (flip, scale jitter with a random crop, resized and padded to the model's size), anchor targets and effdet's loss
 * (training.ts), a new class net for the dataset's categories, COCO mAP on the validation images each epoch, the
 * one training loop (checkpoints with cards, resume, early stopping, curves).
 */
import {
  buildEfficientDet,
  checkNumber,
  claimOutputDir,
  deriveSeed,
  detectorConfig,
  type EfficientDetConfig,
  float32Tensor,
  forEachConcurrent,
  InvalidSpecError,
  randomWeights,
  seededShuffle,
  selectTrainable,
  specFor,
  type TensorMap,
  type TrainSession,
} from '@effnet/core';
import { defaultDetectorPreprocessing, loadPretrainedWeights, type Preprocessing } from '@effnet/zoo';
import type { ModelCard } from '../classification/model-card.js';
import type { RgbImage } from '../images/decode.js';
import { loadModelWeights, resolveModel } from '../models/resolve.js';
import { checkpointStart, defaultTrainingDevice, freshStart, lastCard, onnxNotTrainable, runCardFields, type RunStart, runTrainingLoop, saveEpoch, TrainingError, trainingBackend, type TrainingRunOptions, type TrainingRunResult } from '../training/loop.js';
import { checkRecipeOptions, type Recipe, type RecipeOptions, resolveRecipe, resumedRecipeOptions, trainerSettings } from '../training/recipe.js';
import { detectorAnchors } from './anchors.js';
import { detectionTrainTransform, imageInfoFor, resizePad } from './augment-boxes.js';
import type { CocoGroundTruth } from './coco-format.js';
import { type CocoEvalResult, evaluateCoco } from './coco-eval.js';
import { type CocoDetectionDataset, type DetectionSample, loadCocoDetection, loadDetectionImage } from './coco-dataset.js';
import { splitHeadOutputs } from './detector.js';
import { writeEffdetNormalized } from './letterbox.js';
import { postprocessDetections } from './postprocess.js';
import { detectionLoss, detectionTargets } from './training.js';

export interface FineTuneDetectorOptions extends RecipeOptions, TrainingRunOptions {
  /** A COCO dataset directory (annotations.json + images) to train on. */
  data: string;
  /** A separate validation dataset with the same categories; else a seeded split of `data`'s images. */
  val?: string;
  valFraction?: number;
  /** Where to start: a detector checkpoint, a detection zoo entry, or a detector architecture (random weights). */
  model: string;
  /**
   * A classifier (zoo entry, checkpoint, or a variant with --weights) whose trunk initialises the backbone of a
   * detector architecture, as effdet's `pretrained_backbone`; only with a `model` that is an architecture.
   */
  backbone?: string;
  /** 'backbone': train the BiFPN and heads only; 'none': everything. */
  freeze?: 'none' | 'backbone';
  /** Input size (square); default the detector's. */
  size?: number;
  onRecipe?: (recipe: Recipe) => void;
}

export type FineTuneDetectorResult = TrainingRunResult;

interface Start extends RunStart {
  config: EfficientDetConfig;
  /** Only the backbone starts trained (--backbone): the BiFPN and heads are new. */
  newHeads?: boolean;
  categories?: { id: number; name: string }[];
}

async function startingPoint(o: FineTuneDetectorOptions, names: string[]): Promise<Start> {
  const fromCheckpoint = async (path: string, resume: boolean): Promise<Start> => {
    const { checkpoint, start } = await checkpointStart(path, { task: 'detection', classes: names, resume, hint: 'a detector starts from a detector' });
    return { ...start, config: checkpoint.card.detector!, categories: checkpoint.card.categories };
  };
  if (o.resume) return fromCheckpoint(o.out, true);
  const ref = await resolveModel(o.model);
  switch (ref.kind) {
    case 'onnx':
      throw onnxNotTrainable(o.model);
    case 'checkpoint':
      return fromCheckpoint(ref.path, false);
    case 'pretrained': {
      if (ref.entry.task !== 'detection') throw new TrainingError(`"${o.model}" is a classifier; a detector starts from a detection zoo entry (effnet zoo list), a detector checkpoint or a detector architecture`);
      const p = await loadPretrainedWeights(ref.entry.name);
      return { ...freshStart(p.entry.preprocessing, p.weights, ref.entry.name), config: detectorConfig(ref.entry.arch) };
    }
    case 'detector': {
      const preprocessing = defaultDetectorPreprocessing(ref.name);
      if (o.backbone === undefined) return { ...freshStart(preprocessing, null, 'random'), config: ref.config };
      return { ...freshStart(preprocessing, await backboneWeights(o.backbone, ref.config), `${ref.name} on ${o.backbone}`), config: ref.config, newHeads: true };
    }
    case 'segmenter':
      throw new TrainingError(`"${o.model}" is a segmenter; a detector starts from a detector (e.g. tf_efficientdet_d0, efficientdet_phi-3) or a detector checkpoint`);
    case 'variant':
      throw new TrainingError(`"${o.model}" is a classifier architecture; a detector starts from a detector (e.g. tf_efficientdet_d0, efficientdet_phi-3) or a detector checkpoint`);
  }
}

/**
 * A classifier's trunk as a detector's `backbone.` weights: every backbone parameter of the detector must be in the
 * classifier with the same shape (the same EfficientNet), the classifier's head is left out.
 */
async function backboneWeights(name: string, config: EfficientDetConfig): Promise<TensorMap> {
  const c = await loadModelWeights(name);
  if (c.detector) throw new TrainingError(`--backbone ${name} is a detector; give a classifier whose network is the detector's backbone (${config.backbone})`);
  if (c.random) throw new TrainingError(`--backbone ${name} has no trained weights; give a classifier zoo entry or checkpoint (a ${config.backbone})`);
  const graph = buildEfficientDet({ ...config, numClasses: 1 });
  const out: TensorMap = new Map();
  for (const p of graph.parameters) {
    if (!p.name.startsWith('backbone.')) continue;
    const t = c.weights.get(p.name.slice('backbone.'.length));
    if (!t || t.shape.join() !== p.shape.join())
      throw new TrainingError(
        `--backbone ${name} (${c.spec.name}) is not the detector's backbone (${config.backbone}): ${p.name.slice('backbone.'.length)} is ${t ? `[${t.shape.join(', ')}]` : 'missing'}, the detector needs [${p.shape.join(', ')}]`,
      );
    out.set(p.name, t);
  }
  return out;
}

function checkOptions(o: FineTuneDetectorOptions): void {
  checkNumber('epochs', o.epochs, { integer: true, min: 1 });
  if (o.batch !== undefined) checkNumber('batch', o.batch, { integer: true, min: 1 });
  if (o.size !== undefined) checkNumber('size', o.size, { integer: true, min: 32 });
  if (o.patience !== undefined) checkNumber('patience', o.patience, { integer: true, min: 1 });
  if (o.seed !== undefined) checkNumber('seed', o.seed, { integer: true, min: 0 });
  if (o.valFraction !== undefined) checkNumber('valFraction', o.valFraction, { above: 0, below: 1 });
  if (o.freeze !== undefined && o.freeze !== 'none' && o.freeze !== 'backbone') throw new InvalidSpecError('freeze', o.freeze, "'none' or 'backbone'");
  if (o.resume && o.force) throw new InvalidSpecError('resume and force', true, 'one of them: --resume continues the run in --out, --force replaces it');
  if (o.backbone !== undefined && o.resume) throw new InvalidSpecError('backbone', o.backbone, 'nothing with --resume: the run in --out already has its backbone');
  checkRecipeOptions(o);
}

/** A dataset's images split by image into training and validation (seeded), with the validation ground truth. */
function splitDataset(d: CocoDetectionDataset, fraction: number, seed: number): { train: DetectionSample[]; val: DetectionSample[] } {
  const order = seededShuffle(d.samples.length, deriveSeed(seed, 0x0de7));
  const nVal = d.samples.length < 2 ? 0 : Math.max(1, Math.round(d.samples.length * fraction));
  const valIdx = new Set(order.slice(0, nVal));
  return { train: d.samples.filter((_, i) => !valIdx.has(i)), val: d.samples.filter((_, i) => valIdx.has(i)) };
}

/** The ground truth of some images of a dataset (for COCO evaluation of a split). */
function groundTruthOf(d: CocoDetectionDataset, samples: readonly DetectionSample[]): CocoGroundTruth {
  const ids = new Set(samples.map((s) => s.imageId));
  return { images: d.groundTruth.images.filter((im) => ids.has(im.id)), annotations: d.groundTruth.annotations.filter((a) => ids.has(a.image_id)), categories: d.groundTruth.categories };
}

/**
 * COCO evaluation of a detector session on decoded images: letterboxed to the input size, the graph's outputs in
 * inference mode, effdet's post-processing (boxes back in image pixels), pycocotools' numbers.
 */
export async function evaluateDetectorSession(
  session: Pick<TrainSession, 'predictAll'>,
  graph: ReturnType<typeof buildEfficientDet>,
  images: readonly RgbImage[],
  samples: readonly DetectionSample[],
  groundTruth: CocoGroundTruth,
  categories: readonly { id: number }[],
  o: { preprocessing: Preprocessing; size: number; batchSize: number },
): Promise<CocoEvalResult> {
  const anchors = detectorAnchors(graph, [o.size, o.size]);
  const numClasses = categories.length;
  const results: { image_id: number; category_id: number; bbox: number[]; score: number }[] = [];
  for (let s = 0; s < images.length; s += o.batchSize) {
    const chunk = images.slice(s, s + o.batchSize);
    const x = float32Tensor([chunk.length, 3, o.size, o.size]);
    const infos = chunk.map((image, k) => {
      const { image: boxed, info } = resizePad({ image, boxes: [], classes: [] }, { size: o.size, interpolation: o.preprocessing.interpolation ?? 'bicubic' });
      writeEffdetNormalized(boxed, o.preprocessing, x.data as Float32Array, k * 3 * o.size * o.size);
      return imageInfoFor(info);
    });
    const { classes, boxes } = splitHeadOutputs(graph, await session.predictAll(x));
    const dets = postprocessDetections(classes, boxes, { anchors, numClasses, imageInfo: infos });
    dets.forEach((d, k) => {
      const imageId = samples[s + k]!.imageId;
      for (let i = 0; i < d.count; i++) {
        const [x1, y1, x2, y2] = d.boxes.subarray(i * 4, i * 4 + 4);
        results.push({ image_id: imageId, category_id: categories[d.classes[i]! - 1]!.id, bbox: [x1!, y1!, x2! - x1!, y2! - y1!], score: d.scores[i]! });
      }
    });
  }
  return evaluateCoco(groundTruth, results);
}

/**
 * Fine-tunes (or trains) an EfficientDet on a COCO dataset: a new class net for its categories, effdet's augmentation
 * and loss, validation mAP each epoch, checkpoints that `effnet detect` and `Detector.load` take.
 */
export async function fineTuneDetector(o: FineTuneDetectorOptions): Promise<FineTuneDetectorResult> {
  checkOptions(o);
  const seed = o.seed ?? 0;
  const batchSize = o.batch ?? 8;
  const train = await loadCocoDetection(o.data);
  const val = o.val ? await loadCocoDetection(o.val) : undefined;
  if (val && val.categories.map((c) => c.id).join() !== train.categories.map((c) => c.id).join())
    throw new TrainingError(`${o.val} has other categories than ${o.data} (${val.categories.map((c) => c.name).join(', ')} against ${train.categories.map((c) => c.name).join(', ')}); give both the same categories`);
  const split = val ? { train: train.samples, val: val.samples } : splitDataset(train, o.valFraction ?? 0.1, seed);
  if (!split.train.length) throw new TrainingError(`${o.data} has no images to train on`);
  const names = train.categories.map((c) => c.name);
  const start = await startingPoint(o, names);
  if (!o.resume) await claimOutputDir(o.out, { owner: 'effnet train', force: o.force, flag: '--out', hint: 'pass --resume to continue that run, --force to replace it, or choose another --out' });
  const size = o.size ?? start.config.imageSize[0];
  const config: EfficientDetConfig = { ...start.config, imageSize: [size, size], numClasses: names.length };
  const graph = buildEfficientDet(config, { numClasses: names.length });
  const weights: TensorMap = new Map(randomWeights(graph, seed));
  // A new class net for new categories; everything else (backbone, BiFPN, box net, the class net's hidden convs) kept.
  if (start.weights) for (const [name, t] of start.weights) if (weights.has(name) && (start.keepHead || !name.startsWith('class_net.predict.'))) weights.set(name, t);
  const preprocessing: Preprocessing = { ...start.preprocessing, inputSize: size, cropPct: 1 };
  const stepsPerEpoch = Math.ceil(split.train.length / batchSize);
  const recipe = resolveRecipe(o.resume ? resumedRecipeOptions(start.recipe, o) : o, { imageSize: size, trainImages: split.train.length, stepsPerEpoch, epochs: o.epochs, pretrained: start.weights !== null, frozenBackbone: false, task: 'detection', newHeads: start.newHeads ?? (start.weights !== null && !start.keepHead) });
  o.onRecipe?.(recipe);
  const jitter = recipe.scaleJitter;
  const backendName = o.backend ?? 'auto';
  const backend = await trainingBackend(backendName);
  const freeze = o.freeze ?? 'none';
  const session = await backend.createTrainer(graph, weights, {
    ...trainerSettings(recipe, stepsPerEpoch * o.epochs),
    loss: detectionLoss(graph),
    clipGradNorm: 10,
    trainable: freeze === 'backbone' ? selectTrainable(graph, { freeze: ['backbone'] }) : undefined,
    freezeBatchNorm: false,
    seed,
    startStep: start.step,
    device: o.device ?? defaultTrainingDevice(backendName),
  });
  const decode = async (samples: readonly DetectionSample[]) => {
    const out: RgbImage[] = new Array(samples.length);
    await forEachConcurrent(samples.length, 4, async (i) => {
      out[i] = await loadDetectionImage(samples[i]!);
    });
    return out;
  };
  const [trainImages, valImages] = await Promise.all([decode(split.train), decode(split.val)]);
  const valTruth = groundTruthOf(val ?? train, split.val);
  const anchors = detectorAnchors(graph, [size, size]);
  const plane = 3 * size * size;
  const history = [...start.history];
  let card: ModelCard | undefined;
  let result: Awaited<ReturnType<typeof runTrainingLoop>>;
  try {
    result = await runTrainingLoop({
      session,
      size: split.train.length,
      batchSize,
      epochs: o.epochs,
      startEpoch: start.epoch,
      seed,
      history: start.history,
      patience: o.patience,
      metric: 'AP',
      onProgress: o.onProgress,
      async batch(indices, epoch) {
        const x = float32Tensor([indices.length, 3, size, size]);
        const gt = await Promise.all(
          indices.map(async (i, b) => {
            const s = split.train[i]!;
            const sample = { image: trainImages[i]!, boxes: s.boxes, classes: s.classes };
            const aug = jitter
              ? detectionTrainTransform(sample, { size, seed: deriveSeed(seed, epoch, i), scale: jitter, hflip: recipe.flip ? 0.5 : 0, fill: undefined })
              : resizePad(sample, { size, interpolation: preprocessing.interpolation ?? 'bicubic' });
            writeEffdetNormalized(aug.image, preprocessing, x.data as Float32Array, b * plane);
            return { boxes: aug.boxes, classes: aug.classes };
          }),
        );
        return { input: x, targets: detectionTargets(anchors, names.length, gt) };
      },
      async validate(s) {
        if (!split.val.length) return { AP: Number.NaN, AP50: Number.NaN };
        const r = await evaluateDetectorSession(s, graph, valImages, split.val, valTruth, train.categories, { preprocessing, size, batchSize });
        return { AP: r.stats.AP, AP50: r.stats.AP50 };
      },
      async save(row, best) {
        history.push(row);
        card = {
          ...runCardFields({
            name: o.name,
            out: o.out,
            fallbackName: 'detector',
            base: start.base,
            seed,
            steps: session.steps,
            row,
            history,
            data: o.data,
            val: o.val,
            valFraction: o.valFraction,
            trainImages: split.train.length,
            valImages: split.val.length,
            epochs: o.epochs,
            batch: batchSize,
            backend: backend.name,
            device: session.device,
            freeze,
            extra: { scaleJitter: jitter, loss: 'effdet DetectionLoss: focal (alpha 0.25, gamma 1.5) + 50 x Huber (delta 0.1), normalised by positives + 1' },
            recipe,
          }),
          task: 'detection',
          arch: config.name,
          spec: specFor(config.backbone, { dropPathRate: config.backboneDropPath }),
          detector: config,
          categories: train.categories,
          classes: names,
          preprocessing,
          metrics: { AP: row.AP ?? Number.NaN, AP50: row.AP50 ?? Number.NaN, trainLoss: row.trainLoss! },
        };
        await saveEpoch(o.out, session.weights(), card, best, history, ['AP', 'AP50']);
      },
    });
  } finally {
    session.dispose();
  }
  return { card: lastCard(card, o.out, start.epoch, o.epochs), out: o.out, stoppedEarly: result.stoppedEarly, history: result.history, recipe };
}
